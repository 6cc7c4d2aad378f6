"""Error handling (``_ops/errors.py``): recover, recover_with(_retries), map_error,
on_error_complete, on_error_continue.

One family of ``FlowOps`` (``reactive/_dsl/blueprints.py``), the operators shared by
``Source``, ``Flow`` and ``SubFlow``: a mixin whose methods build stages and append them
with the primitives of :class:`~._base.OpsBase`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..._checks import (
    check,
    fn,
    integer,
    opt_fn,
)
from ._base import Mat, OpsBase, Out, Repr, U

if TYPE_CHECKING:
    from ..blueprints import Source

__all__ = ["ErrorOps"]


class ErrorOps(OpsBase[Out, Mat]):
    """Error handling (``_ops/errors.py``): recover, recover_with(_retries), map_error,
    on_error_complete, on_error_continue."""

    __slots__ = ()

    def recover(self, f: Callable[[BaseException], U | None]) -> Repr[Out | U, Mat]:
        """On an upstream failure emit ``f(exc)`` as the last element and complete.

        ``f`` re-raises to leave the failure as it is (or raises another exception to
        fail with that); returning ``None`` completes without a last element.

        Emits when upstream emits, or once after a recovered failure. Backpressures when
        downstream does. Completes when upstream completes or after recovering. Fails when
        ``f`` raises. Cancels when downstream cancels.
        """
        check("recover(f)", fn(f))
        from ..._ops.errors import Recover

        return self._via_stage(Recover(f))

    def recover_with_retries(
        self, attempts: int, f: Callable[[BaseException], Source[U, Any]]
    ) -> Repr[Out | U, Mat]:
        """On a failure continue with the Source ``f(exc)``, up to ``attempts`` times.

        ``attempts == 0`` never recovers, a negative value recovers without limit; a
        failure of a replacement source counts as another attempt. ``f`` re-raises to
        leave a failure unrecovered.

        Emits when upstream or the replacement emits. Backpressures when downstream does.
        Completes when upstream or the replacement completes. Fails when a failure is not
        recovered. Cancels when downstream cancels (the replacement too). Supervision:
        applies to an exception ``f`` raises other than the failure itself: stop fails
        with it; resume and restart drop the failure and complete the stream.
        """
        check("recover_with_retries(attempts, f)", integer(attempts), fn(f))
        from ..._ops.errors import RecoverWithRetries

        return self._via_stage(RecoverWithRetries(attempts, f))

    def map_error(self, f: Callable[[BaseException], BaseException | None]) -> Repr[Out, Mat]:
        """Fail with ``f(exc)`` instead of the upstream failure (``None`` keeps ``exc``).

        Emits when upstream emits. Backpressures when downstream does. Completes when
        upstream completes. Fails when upstream fails, with the translated exception.
        Cancels when downstream cancels.
        """
        check("map_error(f)", fn(f))
        from ..._ops.errors import MapError

        return self._via_stage(MapError(f))

    def recover_with(self, f: Callable[[BaseException], Source[U, Any]]) -> Repr[Out | U, Mat]:
        """On a failure continue with the Source ``f(exc)``, without limit (Akka's
        ``recoverWith``, ``recover_with_retries(-1, f)``).

        A failure of the replacement source is recovered the same way. ``f`` re-raises
        to leave a failure unrecovered (the stream then fails with it); with a ``f``
        that always returns a failing source the stream never ends.

        Emits when upstream or the replacement emits. Backpressures when downstream does.
        Completes when upstream or the replacement completes. Fails when ``f`` raises.
        Cancels when downstream cancels (the replacement too). Supervision: applies to an
        exception ``f`` raises other than the failure itself: stop fails with it; resume
        and restart drop the failure and complete the stream.
        """
        check("recover_with(f)", fn(f))
        from ..._ops.errors import RecoverWith

        return self._via_stage(RecoverWith(f))

    def on_error_complete(
        self,
        pred_or_exception_class: type[BaseException]
        | tuple[type[BaseException], ...]
        | Callable[[BaseException], bool]
        | None = None,
    ) -> Repr[Out, Mat]:
        """Turn a matched upstream failure into completion (Akka's ``onErrorComplete``).

        ``None`` matches every ``Exception``; an exception class (or a tuple of them)
        matches its instances; a predicate matches where it returns true. An unmatched
        failure fails the stream as before; a predicate that raises fails it with what
        it raised. ``KeyboardInterrupt`` and the like are never matched.

        Emits when upstream emits. Backpressures when downstream does. Completes when
        upstream completes, or fails with a matched exception. Fails when upstream fails
        with an unmatched exception. Cancels when downstream cancels.
        """
        from ..._ops.errors import OnErrorComplete, error_matcher

        return self._via_stage(OnErrorComplete(error_matcher(pred_or_exception_class)))

    def on_error_continue(
        self,
        pred_or_exception_class: type[BaseException]
        | tuple[type[BaseException], ...]
        | Callable[[BaseException], bool]
        | None = None,
        error_consumer: Callable[[BaseException], Any] | None = None,
    ) -> Repr[Out, Mat]:
        """Drop the element a matched failure happened on and go on (Pekko's
        ``onErrorContinue``): ``error_consumer(exc)`` is called for each (without one,
        the dropped failure is logged at WARNING); an unmatched failure stops the stream.

        Matching as ``on_error_complete``: ``None`` matches every ``Exception``, an
        exception class (or a tuple of them) its instances, a predicate where it returns
        true. As Pekko's, this is no stage: it sets a supervision decider (``resume`` for
        a match, ``stop`` otherwise) as an attribute of everything composed so far, so it
        acts only where an operator of that upstream part supports supervision (``map``,
        ``filter``, ``map_async``, ...: the operators documented with *Supervision*) and
        sets no decider of its own; it cannot turn an upstream failure into anything
        (a failed source still fails the stream: use ``recover`` or
        ``on_error_complete``), and operators appended after it are not covered. An
        ``error_consumer`` that raises fails the stream with a note saying so.

        Emits when upstream emits. Backpressures when downstream does. Completes when
        upstream completes. Fails when upstream fails with an unmatched exception (or one
        no supervised operator handles). Cancels when downstream cancels.
        """
        sig = "on_error_continue(pred_or_exception_class, error_consumer)"
        from ..._attributes import Attributes
        from ..._ops.errors import error_matcher
        from ..._ops.side_effects import continuing_decider

        matches = error_matcher(pred_or_exception_class, sig, "pred_or_exception_class")
        check(sig, None, opt_fn(error_consumer))
        decider = continuing_decider(matches, error_consumer)
        result: Repr[Out, Mat] = self.add_attributes(Attributes.supervision_strategy(decider))
        return result

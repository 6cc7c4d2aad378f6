"""Operators flattening nested sources (``_ops/nesting.py``).

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
    int_at_least,
    integer,
    pos_int,
)
from ..._keep import Keep
from ._base import M2, M3, Mat, OpsBase, Out, Repr, U

if TYPE_CHECKING:
    import asyncio

    from ..._keep import NotUsedType
    from ..blueprints import Flow, Source

__all__ = ["NestingOps"]


class NestingOps(OpsBase[Out, Mat]):
    """Operators flattening nested sources (``_ops/nesting.py``)."""

    __slots__ = ()

    def flat_map_concat(self, f: Callable[[Out], Source[U, Any]]) -> Repr[U, Mat]:
        """Turn each element into a Source with ``f`` and emit their elements one source
        after another (only one inner source is consumed at a time).

        Emits when the current inner source has an element. Backpressures when downstream
        does. Completes when upstream and the last inner source completed. Fails when
        upstream, ``f`` or an inner source fails. Cancels when downstream cancels.
        Supervision: resume/restart drop the element whose ``f`` raised.
        """
        check("flat_map_concat(f)", fn(f))
        from ..._ops.nesting import FlatMapMerge

        return self._via_stage(FlatMapMerge(1, f, name="flat_map_concat"))

    def flat_map_merge(self, breadth: int, f: Callable[[Out], Source[U, Any]]) -> Repr[U, Mat]:
        """Turn each element into a Source with ``f``; consume up to ``breadth`` of them
        at once, emitting elements as they arrive (order kept within one source).

        Emits when any inner source has an element. Backpressures when downstream does;
        stops pulling upstream while ``breadth`` sources are active (one that completed
        counts until the elements it handed over were emitted). Completes when
        upstream and every inner source completed. Fails when upstream, ``f`` or an inner
        source fails. Cancels when downstream cancels. Supervision: resume/restart drop the
        element whose ``f`` raised.
        """
        check("flat_map_merge(breadth, f)", pos_int(breadth), fn(f))
        from ..._ops.nesting import FlatMapMerge

        return self._via_stage(FlatMapMerge(breadth, f))

    def switch_map(self, f: Callable[[Out], Source[U, Any]]) -> Repr[U, Mat]:
        """Flat-map to the latest source only (``flat_map_latest``): each new element
        cancels the inner source in use and switches to ``f(element)``.

        Emits when the current inner source has an element. Backpressures never towards
        upstream (it is always pulled; downstream backpressure applies to the inner source).
        Completes when upstream completed and the current inner source completed. Fails
        when upstream, ``f`` or the current inner source fails. Cancels when downstream
        cancels. Supervision: resume/restart drop the element whose ``f`` raised.
        """
        check("switch_map(f)", fn(f))
        from ..._ops.nesting import SwitchMap

        return self._via_stage(SwitchMap(f))

    def prefix_and_tail(self, n: int) -> Repr[tuple[list[Out], Source[Out, NotUsedType]], Mat]:
        """Emit one pair ``(first n elements as a list, Source of the rest)``, then
        complete. ``n <= 0`` gives ``([], whole stream)``; a shorter stream gives
        ``(all elements, empty Source)``. The tail must be materialized once, within the
        subscription timeout (5 s unless ``Attributes.subscription_timeout`` says
        otherwise), else it fails with ``SubscriptionTimeoutError``.

        Emits when ``n`` elements arrived (or upstream completed). Backpressures when
        downstream does (then: when the tail's consumer does). Completes when the pair was
        emitted (the tail goes on). Fails when upstream fails before the pair (afterwards the
        tail fails). Cancels when downstream cancels before the pair, or the tail is cancelled.
        """
        check("prefix_and_tail(n)", integer(n))
        from ..._ops.nesting import PrefixAndTail

        return self._via_stage(PrefixAndTail(n))

    def flat_map_prefix(self, n: int, f: Callable[[list[Out]], Flow[Out, U, Any]]) -> Repr[U, Mat]:
        """Use the first ``n`` elements to decide how to process the rest (Akka's
        ``flatMapPrefix``): ``f(prefix)`` (the first ``n`` elements as a list, fewer if the
        stream is shorter) returns a Flow, which is materialized and processes the rest of
        the stream; its output is this operator's output. As in Akka the prefix only goes
        to ``f``, not through the Flow (``Flow().prepend(Source.from_iterable(prefix))``
        processes it too). ``n == 0`` calls ``f([])`` on the first demand. Keeps this
        blueprint's materialized value; ``flat_map_prefix_mat`` gives the nested flow's.

        A downstream cancel before the Flow exists cancels upstream at once and the Flow
        is never built (Akka's default ``NestedMaterializationCancellationPolicy``,
        ``eager_cancellation``). With the attribute
        ``Attributes.nested_materialization_cancellation_policy(True)``
        (``NestedMaterializationCancellationPolicy.propagate_to_nested``) the prefix is
        still pulled, the Flow built and materialized, and the cancellation (with its
        cause) handed to it: upstream is cancelled when the Flow cancels its input.

        Emits when the nested flow emits. Backpressures when downstream or the nested
        flow backpressures. Completes when the nested flow completes (a stream shorter
        than ``n`` builds the flow from what arrived, then completes its input). Fails when
        upstream fails before the prefix is complete, ``f`` raises or returns no Flow, or
        the nested flow fails. Cancels when downstream cancels, or the nested flow cancels
        its input.
        """
        check("flat_map_prefix(n, f)", int_at_least(n, 0), fn(f))
        from ..._ops.lazy import FlatMapPrefix

        return self._via_stage(FlatMapPrefix(n, f), Keep.left)

    def flat_map_prefix_mat(
        self,
        n: int,
        f: Callable[[list[Out]], Flow[Out, U, M2]],
        combine: Callable[[Mat, asyncio.Future[M2]], M3],
    ) -> Repr[U, M3]:
        """``flat_map_prefix`` combining this blueprint's materialized value with an
        awaitable of the nested flow's (Akka's ``flatMapPrefixMat``).

        The awaitable gets the nested flow's materialized value once it is built; it
        fails with ``NeverMaterializedError`` when the flow is never built (upstream
        failed or downstream cancelled first, or ``f`` raised: ``__cause__`` says which)
        and with ``AbruptTerminationError`` when the stream is stopped abruptly.

        Emits when the nested flow emits. Backpressures when downstream or the nested
        flow backpressures. Completes when the nested flow completes. Fails when upstream
        fails before the prefix is complete, ``f`` raises or returns no Flow, or the nested
        flow fails. Cancels when downstream cancels, or the nested flow cancels its input.
        """
        check("flat_map_prefix_mat(n, f, combine)", int_at_least(n, 0), fn(f), fn(combine))
        from ..._ops.lazy import FlatMapPrefix

        return self._via_stage(FlatMapPrefix(n, f), combine)

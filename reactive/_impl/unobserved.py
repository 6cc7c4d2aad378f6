"""Stream failures that nobody observes are logged (as asyncio does for a task).

A stream failure reaches the user through the awaitables among its materialized values
(``Sink.seq()``'s list, ``watch_termination()``, ...). Those are :class:`ResultPromise`\\ s,
``asyncio.Future``\\ s that never log asyncio's own "exception was never retrieved"
(it names no stage and fires for every awaitable of the stream). Instead:

- The first stage that fails with an exception (a user function raised, or the stage
  called ``fail_stage``) is noted as the failure's origin (:func:`note_failure`), on a
  small record attached to the exception object; the stages it propagates through
  keep the first name.
- Each promise failed with that exception counts as one awaitable of the failure.
- The failure is *observed* once any of them was awaited or had its exception
  retrieved (``exception()``, ``result()``, a done callback calling them), or when it
  was handed to something that reports it (:func:`observed`): a ``SourceQueue`` /
  ``SinkQueue`` (``offer`` / ``pull`` raise it), a test probe, or a ``Restart*``
  stage that handles it by restarting.
- When the last of its promises is garbage-collected and the failure was never
  observed, one ERROR record goes to the ``reactive`` logger naming the stage, with the
  exception and its traceback.

Failures that are not stream failures are never logged this way: an
``AbruptTerminationError`` (a materializer shutdown, the loop's tasks cancelled as
``asyncio.run`` ends: the stream was stopped from outside), wherever a stage passed it on,
and promises failed without a stage failing (e.g. a lazy operator's
``NeverMaterializedError``). A stream whose failure reaches no awaitable at all (its
only ends are a ``Sink.queue()``, a subscriber or a test probe) reports it there and is
not logged either. Like asyncio's, the report comes when the promise is collected: at
once when nothing else refers to it, otherwise at the next garbage collection.

A failure that nothing downstream can carry (a stage's handler raised while every outlet
of the stage was closed: a custom sink, or a push to a completed outlet) and that failed
no promise by the end of the current callback is logged then (:func:`check_reached`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .._errors import AbruptTerminationError

__all__ = ["ResultPromise", "check_reached", "note_failure", "observed"]

log = logging.getLogger("reactive")

_ATTR = "_reactive_failure"


class _Failure:
    """What is known about one stream failure (attached to its exception)."""

    __slots__ = ("live", "logged", "observed", "origin", "promises", "stage")

    def __init__(self) -> None:
        self.stage: str | None = None
        self.origin: object = None  # the logic noted first (``note_failure``'s ``owner``)
        self.promises = 0  # promises failed with it
        self.live = 0  # of which not yet collected
        self.observed = False
        self.logged = False

    def settled(self) -> bool:
        """Every promise of this failure was collected after it was decided: the same
        exception object failing again is a new failure (e.g. ``Source.failed(exc)``
        run twice)."""
        return self.logged or (self.observed and self.promises > 0 and self.live <= 0)


def _record(exc: BaseException, create: bool) -> _Failure | None:
    if isinstance(exc, AbruptTerminationError):
        # The stream was stopped from outside (a materializer shutdown, the loop's tasks
        # cancelled when asyncio.run ends): not a failure to report, wherever a stage
        # passed it on (a boundary to another island, a hub, a lazy stage).
        return None
    d = getattr(exc, "__dict__", None)
    if d is None:
        return None
    rec: _Failure | None = d.get(_ATTR)
    if rec is not None and create and rec.settled():
        rec = None  # the same exception object failing a new run: a new failure
    if rec is None and create:
        rec = _Failure()
        try:
            d[_ATTR] = rec
        except Exception:  # pragma: no cover - an exception type refusing attributes
            return None
    return rec


def note_failure(exc: BaseException, stage: str, owner: object = None) -> bool:
    """Note that stage ``stage`` (its logic ``owner``) failed with ``exc`` (the first
    stage noted is the origin); True when ``owner`` is that origin (also when ``exc``
    takes no record: then nothing tells).

    Called on the failure path only (``fail_stage`` and a handler that raised).
    """
    rec = _record(exc, True)
    if rec is None:
        return True
    if rec.stage is None:
        rec.stage = stage
        rec.origin = owner
        return True
    return owner is not None and rec.origin is owner


def check_reached(exc: BaseException, loop: asyncio.AbstractEventLoop) -> None:
    """``exc`` failed a stage whose outlets were all closed already (a sink's handler
    raised, or a stage pushed to an outlet it had completed): it cannot travel
    downstream. Once the current callback is done (the stage's own materialized value
    is settled by then), it is logged unless a promise got it or it was observed: a
    failure that reaches no awaitable is not lost silently either."""
    rec = _record(exc, False)
    if rec is None or rec.stage is None:
        return
    loop.call_soon(_report_unreached, exc, rec)


def _report_unreached(exc: BaseException, rec: _Failure) -> None:
    if rec.promises or rec.observed or rec.logged:
        return
    rec.logged = True
    log.error(
        "[%s] a stream failed and the failure reached no awaitable (nothing downstream "
        "could carry it): %r",
        rec.stage,
        exc,
        exc_info=exc,
    )


def observed(exc: BaseException) -> BaseException:
    """Mark ``exc`` as seen by the user (raised to them); returns it, for ``raise``."""
    rec = _record(exc, False)
    if rec is not None:
        rec.observed = True
    return exc


class ResultPromise(asyncio.Future[Any]):
    """The future of an awaitable materialized value; logs its failure if nobody
    observed it (see the module docstring)."""

    _failure: _Failure | None = None

    def set_exception(self, exception: Any, failure: BaseException | None = None) -> None:
        """Fail the promise (as ``asyncio.Future.set_exception``) and count it as an
        awaitable of the stream failure ``failure`` (default: ``exception`` itself; an
        IO stage fails its result with an error wrapping the stream's failure)."""
        super().set_exception(exception)
        if failure is None:
            failure = exception
        if isinstance(failure, BaseException):
            rec = _record(failure, True)
            if rec is not None:
                rec.promises += 1
                rec.live += 1
                self._failure = rec

    def __del__(self) -> None:
        rec = self._failure
        if rec is None:
            if self.done() and not self.cancelled():
                self._log_traceback = False  # never asyncio's "never retrieved"
            return
        unretrieved = self._log_traceback
        self._log_traceback = False
        rec.live -= 1
        if not unretrieved:
            rec.observed = True
        if rec.live > 0 or rec.observed or rec.logged or rec.stage is None:
            return
        rec.logged = True
        exc = self.exception()
        log.error(
            "[%s] a stream failed and nobody observed the failure: %r (await the "
            "stream's materialized value, e.g. the future returned by run_with(), to "
            "handle it)",
            rec.stage,
            exc,
            exc_info=exc,
        )

"""Helpers the operator tests share (probes around a stage, waiting on the loop or the
manual clock, supervision attributes, a test failure)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from reactive import Attributes, Keep, QueueOfferResult, Sink, Source, Supervision
from reactive.stage import (
    FlowShape,
    GraphStage,
    GraphStageLogic,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
)
from reactive.testkit import ManualClock, PublisherProbe, SubscriberProbe, TestSink, TestSource

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = [
    "C",
    "D",
    "E",
    "Boom",
    "OneByOne",
    "Recorder",
    "decider",
    "failing_after",
    "flow_probes",
    "nothing",
    "probes",
    "quiet_for",
    "requests",
    "restarting",
    "resuming",
    "ran",
    "seq",
    "settle",
    "sink_probe",
    "until",
]


class Boom(Exception):
    """A user-function or upstream failure (Akka's ``TE``)."""


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds (Akka's specs wait on a latch here)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def nothing(clock: ManualClock, *probes: SubscriberProbe | PublisherProbe) -> None:
    """Let the loop settle, then check that no probe received anything."""
    await clock.settle()
    for p in probes:
        await p.expect_no_message(0)


async def quiet_for(clock: ManualClock, seconds: float, *probes: Any) -> None:
    """Akka's ``expectNoMessage(seconds)`` on the manual clock."""
    await clock.advance(seconds)
    await nothing(clock, *probes)


def probes(
    build: Callable[[Source[Any, Any]], Source[Any, Any]], mat: Any
) -> tuple[PublisherProbe, SubscriberProbe]:
    """Run ``TestSource.probe()`` through ``build`` into ``TestSink.probe()``."""
    return build(TestSource.probe()).to_mat(TestSink.probe(), Keep.both).run(mat)


def flow_probes(flow: Any, mat: Any) -> tuple[PublisherProbe, SubscriberProbe]:
    """Run ``TestSource.probe()`` through ``flow`` into ``TestSink.probe()``."""
    return TestSource.probe().via(flow).to_mat(TestSink.probe(), Keep.both).run(mat)


def sink_probe(src: Source[Any, Any], mat: Any) -> SubscriberProbe:
    """Run ``src`` into a ``TestSink.probe()``."""
    return src.run_with(TestSink.probe(), mat)


async def requests(pub: PublisherProbe, n: int) -> None:
    """Expect ``n`` pulls from upstream, one element each."""
    for _ in range(n):
        assert await pub.expect_request() == 1


def decider(directive: Any) -> Attributes:
    """A supervision strategy answering ``directive`` for every failure."""
    return Attributes.supervision_strategy(lambda exc: directive)


def resuming() -> Attributes:
    """Akka's ``supervisionStrategy(resumingDecider)``."""
    return decider(Supervision.resume)


def restarting() -> Attributes:
    """Akka's ``supervisionStrategy(restartingDecider)``."""
    return decider(Supervision.restart)


async def until(cond: Callable[[], Any], rounds: int = 200) -> None:
    """Let the loop run until ``cond()`` holds (at most ``rounds`` rounds, else fail)."""
    for _ in range(rounds):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def ran(mat: Any, run: Awaitable[Any], failure: type[BaseException]) -> bool:
    """Await ``run`` on ``mat``; whether it failed with ``failure`` (anything else is
    raised). Then let the loop run until every task of ``mat`` ended (else fail)."""
    failed = False
    try:
        await run
    except failure:
        failed = True
    for _ in range(20):
        if mat.running_tasks == 0:
            break
        await asyncio.sleep(0)
    assert mat.running_tasks == 0
    return failed


async def seq(src: Source[Any, Any], mat: Any) -> list[Any]:
    """Run ``src`` into ``Sink.seq()``."""
    return await src.run_with(Sink.seq(), mat)  # type: ignore[no-any-return]


_END: Any = object()


def failing_after(xs: list[Any], msg: str) -> Source[Any, Any]:
    """The elements of ``xs``, then a failure with ``Boom(msg)``."""

    def check(x: Any) -> Any:
        if x is _END:
            raise Boom(msg)
        return x

    return Source.from_iterable([*xs, _END]).map(check)


class Recorder:
    """A Reactive Streams subscriber recording its signals."""

    def __init__(self) -> None:
        self.subscription: Any = None
        self.signals: list[str] = []
        self.elements: list[Any] = []
        self.error: BaseException | None = None
        self.completed = False

    def on_subscribe(self, subscription: Any) -> None:
        self.signals.append("on_subscribe")
        if self.subscription is None:
            self.subscription = subscription

    def on_next(self, elem: Any) -> None:
        self.signals.append("on_next")
        self.elements.append(elem)

    def on_error(self, exc: BaseException) -> None:
        self.signals.append("on_error")
        self.error = exc

    def on_complete(self) -> None:
        self.signals.append("on_complete")
        self.completed = True

    async def wait_for(self, n: int) -> list[Any]:
        for _ in range(200):
            if len(self.elements) >= n:
                break
            await asyncio.sleep(0)
        return self.elements


#: The offer results, short (as the Source.queue and Sink.queue cases compare lists of them).
E, D, C = QueueOfferResult.enqueued, QueueOfferResult.dropped, QueueOfferResult.queue_closed


class OneByOne(GraphStage[FlowShape]):
    """A textbook element-at-a-time pass-through stage (a user's custom stage: no batch
    protocol, no fused chain; every element is a push and a pull event)."""

    def __init__(self) -> None:
        super().__init__()
        self.shape = FlowShape(Inlet("OneByOne.in"), Outlet("OneByOne.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        """A fresh logic passing each element on."""
        shape = self.shape

        class Logic(GraphStageLogic, InHandler, OutHandler):
            def __init__(self) -> None:
                super().__init__(shape)
                self.set_handlers(shape.in_, shape.out, self)

            def on_push(self) -> None:
                self.push(shape.out, self.grab(shape.in_))

            def on_pull(self) -> None:
                self.pull(shape.in_)

        return Logic()

"""Review 5 (resource operators against Akka's semantics).

``map_with_resource`` is Akka's ``mapWithResource``, which Akka builds on ``statefulMap``
with ``close`` as the ``onComplete``: its doc says "upstream completes or fails, the
optional value returned by close will be emitted to downstream if defined; downstream
cancels or fails [or the stream shuts down abruptly]: ignored". So the value of ``close``
goes out before an upstream failure, before the failure of ``f`` under ``stop``, and
before a supervision restart opens the next resource (``StatefulMap.resetStateAndPull``
pushes it). The port emitted it only on completion (the tests marked DEFECT failed before
the fix in ``_ops/resource.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from reactive import Flow, Materializer, Sink, Source, Supervision
from reactive.testkit import TestSink

from .support import Boom, decider, probes, seq


class _Res:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name
        log.append(f"open {name}")

    def close(self) -> str:
        self.log.append(f"close {self.name}")
        return f"end {self.name}"


def _flow(log: list[str], fail_on: Any = None, close_fails: bool = False) -> Flow[Any, Any, Any]:
    names = iter("ABCDEF")

    def f(r: _Res, x: Any) -> Any:
        if x == fail_on:
            raise Boom(f"f {x}")
        return f"{r.name}{x}"

    def close(r: _Res) -> Any:
        value = r.close()
        if close_fails:
            raise Boom(f"close {r.name}")
        return value

    return Flow().map_with_resource(lambda: _Res(log, next(names)), f, close)


async def test_upstream_failure_emits_the_close_value_then_fails(
    materializer: Materializer,
) -> None:
    """DEFECT: Akka emits what ``close`` returns when upstream fails, then fails; the
    port closed the resource and dropped the value."""
    log: list[str] = []
    pub, sub = probes(lambda s: s.via(_flow(log)), materializer)
    sub.request(5)
    pub.send_next(1)
    await sub.expect_next("A1")
    pub.send_error(Boom("up"))
    await sub.expect_next("end A")
    exc = await sub.expect_error()
    assert isinstance(exc, Boom) and str(exc) == "up"
    assert log == ["open A", "close A"]


async def test_f_failing_under_stop_emits_the_close_value_then_fails(
    materializer: Materializer,
) -> None:
    """DEFECT: ``f`` raising under ``stop`` fails the stage as Akka's
    ``StatefulMap.closeStateAndFail``: the value of ``close`` first, then the failure (it
    was dropped)."""
    log: list[str] = []
    sub = (
        Source.from_iterable([1, 2, 3])
        .via(_flow(log, fail_on=2))
        .run_with(TestSink.probe(), materializer)
    )
    sub.request(5)
    await sub.expect_next("A1", "end A")
    exc = await sub.expect_error()
    assert isinstance(exc, Boom) and str(exc) == "f 2"
    assert log == ["open A", "close A"]


async def test_restart_emits_the_old_resources_close_value(materializer: Materializer) -> None:
    """DEFECT: under ``restart`` Akka closes the resource, pushes what ``close`` returned
    (on the demand the failed element was pulled for) and opens a new one; the port
    dropped the value."""
    log: list[str] = []
    flow = _flow(log, fail_on=2).with_attributes(decider(Supervision.restart))
    got = await seq(Source.from_iterable([1, 2, 3]).via(flow), materializer)
    assert got == ["A1", "end A", "B3", "end B"]
    assert log == ["open A", "close A", "open B", "close B"]


async def test_restart_with_backpressure_emits_the_close_value_on_demand(
    materializer: Materializer,
) -> None:
    """The value of ``close`` on restart waits for demand: nothing is pushed without it,
    and the next element is only pulled after it went out."""
    log: list[str] = []
    flow = _flow(log, fail_on=2).with_attributes(decider(Supervision.restart))
    pub, sub = probes(lambda s: s.via(flow), materializer)
    sub.request(1)
    assert await pub.expect_request() >= 1
    pub.send_next(1)
    await sub.expect_next("A1")
    sub.request(1)
    pub.send_next(2)
    await sub.expect_next("end A")
    await sub.expect_no_message(0.05)
    sub.request(1)
    pub.send_next(3)
    await sub.expect_next("B3")
    pub.send_complete()
    sub.request(1)
    await sub.expect_next("end B")
    await sub.expect_complete()


async def test_resume_and_cancel_still_drop_nothing_and_close_once(
    materializer: Materializer,
) -> None:
    """Unchanged: ``resume`` keeps the resource (no close value); a downstream cancel
    closes it once and drops its value (Akka: "downstream cancels: ignored")."""
    log: list[str] = []
    flow = _flow(log, fail_on=2).with_attributes(decider(Supervision.resume))
    assert await seq(Source.from_iterable([1, 2, 3]).via(flow), materializer) == [
        "A1",
        "A3",
        "end A",
    ]
    log2: list[str] = []
    got = (
        await Source.from_iterable([1, 2, 3])
        .via(_flow(log2))
        .take(1)
        .run_with(Sink.seq(), materializer)
    )
    assert got == ["A1"]
    assert log2 == ["open A", "close A"]


async def test_a_raising_close_after_a_failure_keeps_the_first_failure(
    materializer: Materializer,
) -> None:
    """When ``close`` raises after ``f`` failed (stop) or upstream failed, the stream fails
    with the first failure (the close's is logged) and closes once."""
    log: list[str] = []
    src = Source.from_iterable([1, 2]).via(_flow(log, fail_on=2, close_fails=True))
    with pytest.raises(Boom, match="f 2"):
        await seq(src, materializer)
    assert log == ["open A", "close A"]


async def test_a_raising_close_on_restart_fails_the_stream(materializer: Materializer) -> None:
    """A ``close`` raising while a restart closes the resource fails the stream with its
    exception (no new resource is opened)."""
    log: list[str] = []
    flow = _flow(log, fail_on=2, close_fails=True).with_attributes(decider(Supervision.restart))
    with pytest.raises(Boom, match="close A"):
        await seq(Source.from_iterable([1, 2, 3]).via(flow), materializer)
    assert log == ["open A", "close A"]

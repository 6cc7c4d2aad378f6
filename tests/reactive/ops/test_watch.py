"""Watching a stream (``reactive/_ops/watch.py``): watch_termination and monitor. Akka's
FlowWatchTerminationSpec and our own cases, one class per operator.
"""

from __future__ import annotations

from typing import Any

import pytest

from reactive import (
    AbruptTerminationError,
    Done,
    Flow,
    FlowMonitorState,
    Keep,
    Materializer,
    Sink,
    Source,
)
from reactive.testkit import TestSink, TestSource
from tests.reactive.support import Boom, settle


def watch_termination_probes(materializer: Materializer) -> tuple[Any, Any, Any]:
    """``watch_termination`` between probes: ``(pub, termination future, sub)``."""
    (pub, done), sub = (
        TestSource.probe()
        .watch_termination(Keep.both)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    return pub, done, sub


class TestWatchTermination:
    """``watch_termination``."""

    async def test_watch_termination_empty_and_completed(self, materializer: Materializer) -> None:
        done = Source.empty().watch_termination(Keep.right).to(Sink.ignore()).run(materializer)
        assert await done is Done
        done = (
            Source.from_iterable(range(1, 5))
            .watch_termination(Keep.right)
            .to(Sink.ignore())
            .run(materializer)
        )
        assert await done is Done

    async def test_watch_termination_in_a_flow_section(self, materializer: Materializer) -> None:
        flow = Flow().watch_termination(Keep.right).map(lambda x: x + 1)
        done, out = (
            Source.from_iterable([1, 2, 3])
            .via_mat(flow, Keep.right)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        assert await out == [2, 3, 4]
        assert await done is Done

    async def test_watch_termination_fails_with_the_stream_failure(
        self, materializer: Materializer
    ) -> None:
        pub, done = (
            TestSource.probe().watch_termination(Keep.both).to(Sink.ignore()).run(materializer)
        )
        pub.send_next(1)
        pub.send_error(Boom())
        with pytest.raises(Boom):
            await done

    async def test_watch_termination_on_cancel_completes(self, materializer: Materializer) -> None:
        pub, done, sub = watch_termination_probes(materializer)
        sub.request(1)
        pub.send_next(1)
        await sub.expect_next(1)
        sub.cancel()
        await pub.expect_cancellation()
        assert await done is Done

    async def test_watch_termination_fails_on_abrupt_termination(self) -> None:
        mat = Materializer()
        done = Source.never().watch_termination(Keep.right).to(Sink.ignore()).run(mat)
        await settle(5)
        await mat.shutdown()
        with pytest.raises(AbruptTerminationError):
            await done

    async def test_watch_termination_completion(self, materializer: Materializer) -> None:
        done, out = (
            Source.from_iterable([1, 2])
            .watch_termination(Keep.right)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        assert await out == [1, 2]
        assert await done is Done

    async def test_watch_termination_failure(self, materializer: Materializer) -> None:
        err = Boom("up")
        done, out = (
            Source.failed(err)
            .watch_termination(Keep.right)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        with pytest.raises(Boom):
            await out
        with pytest.raises(Boom) as info:
            await done
        assert info.value is err

    async def test_watch_termination_downstream_cancel(self, materializer: Materializer) -> None:
        pub, done, sub = watch_termination_probes(materializer)
        sub.request(1)
        await pub.expect_request()
        assert not done.done()
        sub.cancel()
        await pub.expect_cancellation()
        assert await done is Done

    async def test_watch_termination_passes_elements_with_demand(
        self, materializer: Materializer
    ) -> None:
        pub, done, sub = watch_termination_probes(materializer)
        await settle()
        assert pub.pending_demand == 0
        sub.request(1)
        await pub.expect_request()
        pub.send_next("a")
        await sub.expect_next("a")
        pub.send_complete()
        await sub.expect_complete()
        assert await done is Done

    async def test_watch_termination_on_abrupt_shutdown(self) -> None:
        mat = Materializer()
        done = Source.never().watch_termination(Keep.right).to(Sink.ignore()).run(mat)
        await settle()
        await mat.shutdown()
        from reactive import AbruptTerminationError

        with pytest.raises(AbruptTerminationError):
            await done


class TestMonitor:
    """``monitor``."""

    async def test_monitor_states(self, materializer: Materializer) -> None:
        (pub, mon), sub = (
            TestSource.probe()
            .monitor(Keep.both)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        assert mon.state is FlowMonitorState.initialized
        sub.request(1)
        pub.send_next("x")
        await sub.expect_next("x")
        assert mon.state is FlowMonitorState.received
        assert mon.element == "x"
        pub.send_complete()
        await sub.expect_complete()
        assert mon.state is FlowMonitorState.finished

    async def test_monitor_failure(self, materializer: Materializer) -> None:
        err = Boom("up")
        (pub, mon), sub = (
            TestSource.probe()
            .monitor(Keep.both)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.request(1)
        pub.send_error(err)
        await sub.expect_error()
        assert mon.state is FlowMonitorState.failed
        assert mon.error is err

    async def test_monitor_cancel(self, materializer: Materializer) -> None:
        (pub, mon), sub = (
            TestSource.probe()
            .monitor(Keep.both)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.cancel()
        await pub.expect_cancellation()
        assert mon.state is FlowMonitorState.finished

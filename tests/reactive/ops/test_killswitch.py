"""Kill switches (``reactive/_ops/killswitch.py``): ``KillSwitches.single``/``single_bidi`` (a
unique switch per materialization) and ``KillSwitches.shared``. Akka's KillSwitchSpec and our
own cases.
"""

from __future__ import annotations

from typing import Any

import pytest

from reactive import (
    Done,
    Keep,
    KillSwitches,
    Materializer,
    Sink,
    Source,
)
from reactive.testkit import TestSink, TestSource
from tests.reactive.support import Boom, settle


def switched(mat: Materializer) -> tuple[Any, Any, Any]:
    """(publisher, kill switch, subscriber) around ``KillSwitches.single()``."""
    (pub, switch), sub = (
        TestSource.probe()
        .via_mat(KillSwitches.single(), Keep.both)
        .to_mat(TestSink.probe(), Keep.both)
        .run(mat)
    )
    return pub, switch, sub


def single_switch_probes(materializer: Materializer) -> tuple[Any, Any, Any]:
    """``KillSwitches.single()`` between probes: ``(pub, switch, sub)``."""
    (pub, ks), sub = (
        TestSource.probe()
        .via_mat(KillSwitches.single(), Keep.both)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    return pub, ks, sub


class TestUniqueKillSwitch:
    """A unique kill switch (``KillSwitches.single``)."""

    async def test_unique_kill_switch_passes_elements_and_ignores_later_abort(
        self,
        materializer: Materializer,
    ) -> None:
        pub, switch, sub = switched(materializer)
        sub.request(1)
        pub.send_next(1)
        await sub.expect_next(1)
        switch.shutdown()
        await pub.expect_cancellation()
        await sub.expect_complete()
        switch.abort(Boom())  # the first of shutdown/abort wins; later calls do nothing
        await sub.expect_no_message(0.02)

    async def test_unique_kill_switch_abort_then_shutdown_is_ignored(
        self,
        materializer: Materializer,
    ) -> None:
        pub, switch, sub = switched(materializer)
        err = Boom("abort")
        switch.abort(err)
        await pub.expect_cancellation()
        assert await sub.expect_error() is err
        switch.shutdown()
        await sub.expect_no_message(0.02)

    async def test_unique_kill_switch_after_normal_completion_and_failure(
        self,
        materializer: Materializer,
    ) -> None:
        pub, switch, sub = switched(materializer)
        pub.send_complete()
        await sub.expect_complete()
        switch.shutdown()
        switch.abort(Boom())
        pub, switch, sub = switched(materializer)
        pub.send_error(Boom("up"))
        assert str(await sub.expect_error()) == "up"
        switch.shutdown()
        await sub.expect_no_message(0.02)

    async def test_unique_kill_switch_shutdown(self, materializer: Materializer) -> None:
        pub, ks, sub = single_switch_probes(materializer)
        sub.request(1)
        pub.send_next(1)
        await sub.expect_next(1)
        ks.shutdown()
        await sub.expect_complete()
        await pub.expect_cancellation()

    async def test_unique_kill_switch_abort(self, materializer: Materializer) -> None:
        err = Boom("kill")
        pub, ks, sub = single_switch_probes(materializer)
        sub.request(1)
        ks.abort(err)
        assert await sub.expect_error() is err
        await pub.expect_cancellation()

    async def test_unique_kill_switch_ignores_abort_after_shutdown(
        self, materializer: Materializer
    ) -> None:
        pub, switch, probe = (
            TestSource.probe()
            .via_mat(KillSwitches.single(), Keep.both)
            .to_mat(TestSink.probe(), lambda ab, c: (*ab, c))
            .run(materializer)
        )
        probe.request(1)
        await pub.expect_request()
        pub.send_next(1)
        await probe.expect_next(1)
        switch.shutdown()
        await pub.expect_cancellation()
        await probe.expect_complete()
        switch.abort(Boom("ignored"))
        await probe.expect_no_message(0.02)


class TestSharedKillSwitch:
    """A shared kill switch (``KillSwitches.shared``)."""

    async def test_shared_kill_switch_does_not_affect_another_switch(
        self,
        materializer: Materializer,
    ) -> None:
        s1 = KillSwitches.shared("one")
        s2 = KillSwitches.shared("two")
        pub1, sub1 = (
            TestSource.probe().via(s1.flow()).to_mat(TestSink.probe(), Keep.both).run(materializer)
        )
        pub2, sub2 = (
            TestSource.probe().via(s2.flow()).to_mat(TestSink.probe(), Keep.both).run(materializer)
        )
        s1.shutdown()
        await sub1.expect_complete()
        await pub1.expect_cancellation()
        sub2.request(1)
        pub2.send_next(2)
        await sub2.expect_next(2)
        s2.abort(Boom())
        assert isinstance(await sub2.expect_error(), Boom)
        await pub2.expect_cancellation()

    async def test_shared_kill_switches_in_an_ordered_chain(
        self, materializer: Materializer
    ) -> None:
        s1 = KillSwitches.shared("one")
        s2 = KillSwitches.shared("two")
        pub, sub = (
            TestSource.probe()
            .via(s1.flow())
            .via(s2.flow())
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.request(1)
        pub.send_next(1)
        await sub.expect_next(1)
        s2.shutdown()
        await sub.expect_complete()
        await pub.expect_cancellation()
        s1.abort(Boom())  # the chain is already gone
        await sub.expect_no_message(0.02)

    @pytest.mark.parametrize("how", ["shutdown", "abort"])
    async def test_shared_kill_switch_flow_materialized_after_trigger(
        self, materializer: Materializer, how: str
    ) -> None:
        s = KillSwitches.shared("late")
        if how == "shutdown":
            s.shutdown()
        else:
            s.abort(Boom())
        pub, sub = (
            TestSource.probe().via(s.flow()).to_mat(TestSink.probe(), Keep.both).run(materializer)
        )
        if how == "shutdown":
            await sub.expect_complete()
        else:
            assert isinstance(await sub.expect_error(), Boom)
        await pub.expect_cancellation()

    async def test_shared_kill_switch_stops_every_stream(self, materializer: Materializer) -> None:
        shared = KillSwitches.shared("both")
        f1 = Source.never().via(shared.flow()).run_with(Sink.seq(), materializer)
        f2 = Source.repeat(1).via(shared.flow()).run_with(Sink.ignore(), materializer)
        await settle()
        assert not f1.done() and not f2.done()
        shared.shutdown()
        assert await f1 == []
        assert await f2 is Done

    async def test_shared_kill_switch_abort_and_late_materialization(
        self,
        materializer: Materializer,
    ) -> None:
        shared = KillSwitches.shared("abort")
        err = Boom("abort")
        f1 = Source.never().via(shared.flow()).run_with(Sink.seq(), materializer)
        await settle()
        shared.abort(err)
        with pytest.raises(Boom):
            await f1
        # a stream materialized after the switch fired stops at once
        f2 = Source.never().via(shared.flow()).run_with(Sink.seq(), materializer)
        with pytest.raises(Boom):
            await f2

    async def test_shared_kill_switch_flow_materializes_the_switch(
        self, materializer: Materializer
    ) -> None:
        shared = KillSwitches.shared("mat")
        ks, out = (
            Source.single(1)
            .via_mat(shared.flow(), Keep.right)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        assert ks is shared
        assert await out == [1]

    async def test_shared_kill_switch_ignores_later_calls_and_stops_later_flows(
        self,
        materializer: Materializer,
    ) -> None:
        """'ignore subsequent aborts and shutdowns after shutdown' and 'complete immediately
        flows materialized after switch shutdown', over two streams."""
        switch = KillSwitches.shared("switch")
        a = TestSource.probe().via(switch.flow()).to_mat(TestSink.probe(), Keep.both)
        pub1, out1 = a.run(materializer)
        pub2, out2 = a.run(materializer)
        out1.request(1)
        out2.request(1)
        await pub1.expect_request()
        await pub2.expect_request()
        switch.shutdown()
        switch.abort(Boom("ignored"))
        switch.shutdown()
        await out1.expect_complete()
        await out2.expect_complete()
        await pub1.expect_cancellation()
        await pub2.expect_cancellation()
        pub3, out3 = a.run(materializer)
        await out3.expect_complete()
        await pub3.expect_cancellation()

    async def test_shared_kill_switch_used_twice_in_one_stream(
        self, materializer: Materializer
    ) -> None:
        switch = KillSwitches.shared("twice")
        pub, out = (
            TestSource.probe()
            .via(switch.flow())
            .map(lambda x: x * 2)
            .via(switch.flow())
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        out.request(2)
        await pub.expect_request()
        pub.send_next(1)
        await out.expect_next(2)
        switch.abort(Boom("both"))
        assert isinstance(await out.expect_error(), Boom)
        await pub.expect_cancellation()

    def test_shared_kill_switch_shows_its_name(self) -> None:
        """'use its name in the toString'."""
        assert str(KillSwitches.shared("MySwitchName")) == "KillSwitch(MySwitchName)"


class TestKillSwitches:
    """What every kill switch does."""

    async def test_kill_switch_after_termination_is_noop(self, materializer: Materializer) -> None:
        ks, out = (
            Source.from_iterable([1, 2])
            .via_mat(KillSwitches.single(), Keep.right)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        assert await out == [1, 2]
        ks.shutdown()
        ks.abort(Boom("late"))
        await settle()

    async def test_kill_switch_passes_elements_and_failures(
        self, materializer: Materializer
    ) -> None:
        err = Boom("up")
        out = Source.failed(err).via(KillSwitches.single()).run_with(Sink.seq(), materializer)
        with pytest.raises(Boom):
            await out
        probe = (
            Source.from_iterable([1, 2])
            .via(KillSwitches.single())
            .run_with(TestSink.probe(), materializer)
        )
        await probe.request_next(1)
        await probe.request_next(2)
        await probe.expect_complete()

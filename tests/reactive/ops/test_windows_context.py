"""``windowed`` on ``SourceWithContext`` / ``FlowWithContext`` (issue 13): each result
carries the commit point that became safe with it.

The rule: an offset is committed only when every window holding that record, and every
earlier record of the same partition, has been emitted downstream. Checked on hand-made
cases (probes, ``ManualClock``) and, in ``TestReferenceModel``, against a reference model
that recomputes the exact commit point by brute force.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.kafka import CommittableOffset, CommittableOffsetBatch, TopicPartition
from connectors.kafka.messages import GroupTopicPartition
from reactive import (
    Attributes,
    EmitStrategy,
    FlowWithContext,
    Keep,
    Materializer,
    SessionWindows,
    Sink,
    SlidingWindows,
    Source,
    SourceWithContext,
    TimeWindows,
    Windowed,
)
from reactive._supervision import restarting_decider, resuming_decider
from reactive.testkit import ManualClock, SubscriberProbe, TestSink, TestSource
from tests.kafka.support import RecordingCommitter
from tests.reactive.ops.test_windows import SETTINGS, SPECS, Model, inputs

Elem = tuple[str, float, int]  # (key, timestamp, id)


def k0(e: Elem) -> Any:
    return e[0]


def t1(e: Elem) -> Any:
    return e[1]


def with_offsets(elems: list[Any], partitions: list[Any] | None = None) -> list[Any]:
    """``(element, (partition, offset))`` pairs; offsets count per partition from 0."""
    nxt: dict[Any, int] = {}
    out = []
    for i, e in enumerate(elems):
        p = partitions[i] if partitions is not None else "p"
        out.append((e, (p, nxt.setdefault(p, 0))))
        nxt[p] += 1
    return out


async def run(mat: Materializer, spec: Any, pairs: list[Any], **kw: Any) -> list[Any]:
    kw.setdefault("key", k0)
    kw.setdefault("timestamp", t1)
    src = SourceWithContext.from_tuples(Source.from_iterable(pairs))
    return await src.windowed(spec, **kw).run_with(Sink.seq(), mat)


async def settled() -> None:
    for _ in range(30):
        await asyncio.sleep(0)


class CommitModel(Model):
    """``Model`` (API.md's windows by brute force) plus the exact commit point at every
    emission: per partition, the lowest offset a record still held has, minus one; a
    record is held by an open window containing it, by a window waiting to be emitted,
    and (sliding) by the operator's buffer until stream time > t + size + grace."""

    def __init__(self, spec: Any, on_update: bool, where: dict[int, tuple[str, int]]) -> None:
        super().__init__(spec, True, True, on_update)
        self.where = where  # id -> (partition, offset)
        self.seen: dict[str, list[int]] = {}
        self.points: list[dict[str, int]] = []

    def see(self, e: Elem) -> None:
        p, o = self.where[e[2]]
        self.seen.setdefault(p, []).append(o)

    def _point(self, waiting: list[Windowed[Any, Any]]) -> dict[str, int]:
        held = {i for w in self.open for i in w.acc} | {i for w in waiting for i in w.value}
        if isinstance(self.spec, SlidingWindows):
            keep = self.spec.size + self.spec.grace_period
            held |= {e[2] for es in self.accepted.values() for e in es if not e[1] + keep < self.st}
        out = {}
        for p, offsets in self.seen.items():
            lowest = min((self.where[i][1] for i in held if self.where[i][0] == p), default=None)
            point = max(offsets) if lowest is None else lowest - 1
            if point >= min(offsets):
                out[p] = point
        return out

    def emitted(self, before: int) -> None:
        new = self.out[before:]
        for j in range(len(new)):
            self.points.append(self._point([] if self.on_update else new[j + 1 :]))

    def feed(self, e: Elem) -> None:
        self.see(e)
        before = len(self.out)
        super().feed(e)
        self.emitted(before)

    def finish(self) -> None:
        before = len(self.out)
        super().finish()
        self.accepted = {}
        self.emitted(before)


@st.composite
def placed(draw: st.DrawFn) -> tuple[list[Elem], dict[int, tuple[str, int]], set[int]]:
    """Inputs, each id's (partition, offset) (offsets rising per partition, with gaps),
    and the ids whose timestamp function raises."""
    elems = draw(inputs())
    nxt = {p: draw(st.integers(0, 100)) for p in "pq"}
    where = {}
    for e in elems:
        p = draw(st.sampled_from("pq"))
        where[e[2]] = (p, nxt[p])
        nxt[p] += draw(st.integers(1, 3))
    bad = {e[2] for e in elems if draw(st.integers(0, 9)) == 0}
    return elems, where, bad


class TestApi:
    """The with-context operator: its parameters, and the commit points per window kind."""

    def test_same_parameters_as_the_plain_operator(self) -> None:
        plain = list(inspect.signature(Source.windowed).parameters)
        for cls in (SourceWithContext, FlowWithContext):
            assert list(inspect.signature(cls.windowed).parameters) == plain
            doc = cls.windowed.__doc__ or ""
            assert "Emits when" in doc and "Backpressures when" in doc and "Completes when" in doc

    def test_bad_arguments_are_refused_as_by_the_plain_operator(self) -> None:
        src = SourceWithContext.from_tuples(Source.from_iterable([(("k", 1), ("p", 0))]))
        with pytest.raises(ValueError, match="zero and aggregate go together"):
            src.windowed(TimeWindows.of(10), zero=lambda: 0)
        with pytest.raises(ValueError, match="needs merge"):
            src.windowed(SessionWindows.with_gap(5), zero=lambda: 0, aggregate=lambda n, e: n + 1)
        with pytest.raises(TypeError, match="windows must be"):
            FlowWithContext[Any, Any, Any, Any, Any]().windowed("60 s")  # type: ignore[call-overload]

    async def test_tumbling_windows_carry_the_offsets_made_safe(
        self, materializer: Materializer
    ) -> None:
        elems = [("a", 1), ("a", 3), ("a", 12), ("a", 14), ("a", 25), ("a", 2), ("a", 31)]
        got = await run(materializer, TimeWindows.of(10), with_offsets(elems))
        assert got == [
            # Offsets 0, 1 are done; 2 (t=12) is in the open window [10, 20).
            (Windowed("a", 0, 10, [("a", 1), ("a", 3)]), {"p": 1}),
            (Windowed("a", 10, 20, [("a", 12), ("a", 14)]), {"p": 3}),
            # Offset 5 (t=2) was late and dropped: done, it does not hold anything.
            (Windowed("a", 20, 30, [("a", 25)]), {"p": 5}),
            (Windowed("a", 30, 40, [("a", 31)]), {"p": 6}),
        ]

    async def test_an_earlier_record_in_an_open_window_holds_its_partition_back(
        self,
        materializer: Materializer,
    ) -> None:
        # b's record (partition p) sits in [10, 20) while a's [0, 10) closes: p has nothing
        # safe, q advances on its own.
        elems = [("b", 15), ("a", 2), ("a", 12), ("a", 21)]
        got = await run(
            materializer, TimeWindows.of(10).grace(6), with_offsets(elems, ["p", "q", "q", "q"])
        )
        assert [(w.key, w.start, c) for w, c in got] == [
            ("a", 0, {"q": 0}),  # at 21; q's offset 1 (t=12) is in a's open [10, 20)
            ("b", 10, {"p": 0, "q": 0}),  # completion: by end, then key first-seen order
            ("a", 10, {"p": 0, "q": 1}),
            ("a", 20, {"p": 0, "q": 2}),
        ]

    async def test_hopping_windows_hold_a_record_until_its_last_window_is_emitted(
        self,
        materializer: Materializer,
    ) -> None:
        elems = [("a", 1), ("a", 6), ("a", 11), ("a", 16)]
        got = await run(materializer, TimeWindows.of(10).advance_by(5), with_offsets(elems))
        assert [(w.start, w.end, c) for w, c in got] == [
            (-5, 5, {}),  # offset 0 is also in [0, 10), still open
            (0, 10, {"p": 0}),  # at 11: offset 1 (t=6) is in [5, 15)
            (5, 15, {"p": 1}),  # at 16
            (10, 20, {"p": 2}),  # completion
            (15, 25, {"p": 3}),
        ]

    async def test_a_session_merge_keeps_the_lowest_offset_of_both(
        self, materializer: Materializer
    ) -> None:
        elems = [("a", 0), ("a", 10), ("a", 5), ("a", 40)]
        got = await run(materializer, SessionWindows.with_gap(5).grace(10), with_offsets(elems))
        assert got == [
            (Windowed("a", 0, 10, [("a", 0), ("a", 10), ("a", 5)]), {"p": 2}),
            (Windowed("a", 40, 40, [("a", 40)]), {"p": 3}),
        ]

    async def test_sliding_records_kept_for_later_windows_hold_their_offsets(
        self,
        materializer: Materializer,
    ) -> None:
        # [-4, 1] closes at t=3 (stream time > 1) but offset 0 (t=1) may still join a window
        # created later ([1, 6] at t=6 holds it), so it is not done before t > 1 + 5.
        elems = [("a", 1), ("a", 3), ("a", 6), ("a", 20)]
        got = await run(materializer, SlidingWindows.of(5), with_offsets(elems))
        assert [(w.start, w.end, [e[1] for e in w.value], c) for w, c in got] == [
            (-4, 1, [1], {}),
            (-2, 3, [1, 3], {}),
            (1, 6, [1, 3, 6], {"p": 2}),  # t=20: every earlier record expired
            (15, 20, [20], {"p": 3}),
        ]

    async def test_on_window_update_commits_a_record_once_its_windows_closed(
        self,
        materializer: Materializer,
    ) -> None:
        elems = [("a", 1), ("a", 3), ("a", 12), ("a", 25)]
        got = await run(
            materializer,
            TimeWindows.of(10),
            with_offsets(elems),
            emit=EmitStrategy.on_window_update(),
        )
        assert [(w.start, len(w.value), c) for w, c in got] == [
            (0, 1, {}),
            (0, 2, {}),  # [0, 10) was emitted but is still open: not final
            (10, 1, {"p": 1}),  # 12 closed [0, 10)
            (20, 1, {"p": 2}),
        ]

    async def test_flow_with_context_windows_and_carries_commit_points(
        self,
        materializer: Materializer,
    ) -> None:
        flow = FlowWithContext[Any, Any, Any, Any, Any]().windowed(
            TimeWindows.of(10), key=k0, timestamp=t1, zero=lambda: 0, aggregate=lambda n, e: n + 1
        )
        got = await (
            Source.from_iterable(with_offsets([("a", 1), ("b", 2), ("a", 11)]))
            .via(flow.as_flow())
            .run_with(Sink.seq(), materializer)
        )
        assert got == [
            (Windowed("a", 0, 10, 1), {"p": 0}),  # at 11; offset 1 is in b's window
            (Windowed("b", 0, 10, 1), {"p": 1}),
            (Windowed("a", 10, 20, 1), {"p": 2}),
        ]


class TestKafkaOffsets:
    """Kafka offsets become committable offset batches."""

    async def test_kafka_offsets_become_committable_offset_batches(
        self,
        materializer: Materializer,
    ) -> None:
        committer = RecordingCommitter()
        ts = {("t", 0, 0): 1, ("t", 1, 0): 2, ("t", 0, 1): 12, ("t", 1, 1): 3, ("t", 0, 2): 25}
        pairs = [
            (("k", t), CommittableOffset("g", topic, p, o, committer))
            for (topic, p, o), t in ts.items()
        ]
        got = await run(materializer, TimeWindows.of(10), pairs)
        assert [w.start for w, _ in got] == [0, 10, 20]
        assert all(isinstance(c, CommittableOffsetBatch) for _, c in got)
        assert got[0][1].offsets() == {
            GroupTopicPartition("g", "t", 0): 0,  # offset 1 (t=12) is in [10, 20)
            GroupTopicPartition("g", "t", 1): 0,  # offset 1 has not arrived yet
        }
        await got[0][1].commit()
        assert committer.calls == [{TopicPartition("t", 0): 1, TopicPartition("t", 1): 1}]
        assert got[-1][1].offsets() == {
            GroupTopicPartition("g", "t", 0): 2,
            GroupTopicPartition("g", "t", 1): 1,
        }

    async def test_nothing_safe_yet_is_an_empty_batch_for_kafka_offsets(
        self,
        materializer: Materializer,
    ) -> None:
        committer = RecordingCommitter()
        pairs = [
            (("k", t), CommittableOffset("g", "t", 0, o, committer)) for o, t in enumerate([1, 3])
        ]
        got = await run(materializer, TimeWindows.of(10).advance_by(5), pairs)
        assert got[0][1].is_empty  # [-5, 5) went first; [0, 10) still holds both
        await got[0][1].commit()
        assert committer.calls == []


class TestContexts:
    """Contexts that say nothing about order, and ``map_context``."""

    @pytest.mark.parametrize("ctx", ["offset-7", ("p", "7"), ("p", 7.0), ("p", True), ([1], 2), 7])
    async def test_a_context_without_partition_and_offset_fails_naming_the_stage(
        self, materializer: Materializer, ctx: Any
    ) -> None:
        with pytest.raises(TypeError, match=r"\[windowed\] windowed with context needs") as info:
            await run(materializer, TimeWindows.of(10), [(("k", 1), ctx)])
        assert repr(ctx) in str(info.value) and "map_context" in str(info.value)

    async def test_a_later_context_with_an_unhashable_partition_fails_naming_it(
        self,
        materializer: Materializer,
    ) -> None:
        with pytest.raises(TypeError, match=r"\[windowed\] .*as the earlier ones.*\(\[1\], 2\)"):
            await run(
                materializer, TimeWindows.of(10), [(("k", 1), ("p", 0)), (("k", 2), ([1], 2))]
            )

    async def test_a_context_of_another_kind_than_the_first_fails(
        self, materializer: Materializer
    ) -> None:
        committer = RecordingCommitter()
        pairs = [(("k", 1), ("p", 0)), (("k", 2), CommittableOffset("g", "t", 0, 1, committer))]
        with pytest.raises(TypeError, match=r"\(partition, offset\) tuple with an int offset, as"):
            await run(materializer, TimeWindows.of(10), pairs)

    async def test_map_context_turns_any_context_into_partition_and_offset(
        self,
        materializer: Materializer,
    ) -> None:
        src = SourceWithContext.from_tuples(
            Source.from_iterable([(("k", 1), "p-0"), (("k", 11), "p-1")])
        ).map_context(lambda c: (c[0], int(c[2:])))
        got = await src.windowed(TimeWindows.of(10), key=k0, timestamp=t1).run_with(
            Sink.seq(), materializer
        )
        assert [c for _, c in got] == [{"p": 0}, {"p": 1}]


class TestLateResumeRestart:
    """Late records, resume and restart."""

    async def test_the_late_sink_gets_pairs_and_the_late_record_is_done_once_handed_over(
        self,
        materializer: Materializer,
    ) -> None:
        late_probes: list[SubscriberProbe] = []

        def keep(p: SubscriberProbe) -> SubscriberProbe:
            late_probes.append(p)
            return p

        src = SourceWithContext.from_tuples(
            Source.from_iterable(with_offsets([("a", 1), ("a", 12), ("a", 2), ("a", 25)]))
        )
        late = TestSink.probe().map_materialized_value(keep)
        sub = (
            src.windowed(TimeWindows.of(10), key=k0, timestamp=t1, late=late)
            .as_source()
            .run_with(TestSink.probe(), materializer)
        )
        await settled()
        late_sub = late_probes[0]
        sub.request(10)
        assert await sub.expect_next() == (Windowed("a", 0, 10, [("a", 1)]), {"p": 0})
        await sub.expect_no_message(0.05)  # offset 2 (t=2) is late and waits for the late sink
        late_sub.request(1)
        assert await late_sub.expect_next() == (("a", 2), ("p", 2))
        assert await sub.expect_next() == (Windowed("a", 10, 20, [("a", 12)]), {"p": 2})
        assert await sub.expect_next() == (Windowed("a", 20, 30, [("a", 25)]), {"p": 3})
        await sub.expect_complete()

    async def test_flow_with_context_sends_late_pairs_to_the_late_sink(
        self,
        materializer: Materializer,
    ) -> None:
        late: list[Any] = []
        flow = FlowWithContext[Any, Any, Any, Any, Any]().windowed(
            TimeWindows.of(10), key=k0, timestamp=t1, late=Sink.foreach(late.append)
        )
        got = await (
            Source.from_iterable(with_offsets([("a", 1), ("a", 12), ("a", 2), ("a", 25)]))
            .via(flow.as_flow())
            .run_with(Sink.seq(), materializer)
        )
        assert late == [(("a", 2), ("p", 2))]
        assert [c for _, c in got] == [{"p": 0}, {"p": 2}, {"p": 3}]

    async def test_resumed_records_do_not_hold_their_partition(
        self, materializer: Materializer
    ) -> None:
        def ts(e: Elem) -> Any:
            if e[1] < 0:
                raise ValueError("bad timestamp")
            return e[1]

        flow = (
            FlowWithContext[Any, Any, Any, Any, Any]()
            .windowed(TimeWindows.of(10), key=k0, timestamp=ts)
            .with_attributes(Attributes.supervision_strategy(resuming_decider))
        )
        got = await (
            Source.from_iterable(with_offsets([("a", 1), ("a", -1), ("a", 12)]))
            .via(flow.as_flow())
            .run_with(Sink.seq(), materializer)
        )
        assert got == [
            (Windowed("a", 0, 10, [("a", 1)]), {"p": 1}),  # offset 1 was skipped: done
            (Windowed("a", 10, 20, [("a", 12)]), {"p": 2}),
        ]

    async def test_restart_drops_the_windows_and_their_records_are_done(
        self,
        materializer: Materializer,
    ) -> None:
        def key(e: Elem) -> Any:
            if e[0] == "bad":
                raise ValueError("bad key")
            return e[0]

        flow = (
            FlowWithContext[Any, Any, Any, Any, Any]()
            .windowed(TimeWindows.of(10).grace(100), key=key, timestamp=t1)
            .with_attributes(Attributes.supervision_strategy(restarting_decider))
        )
        got = await (
            Source.from_iterable(with_offsets([("a", 1), ("bad", 2), ("b", 3)]))
            .via(flow.as_flow())
            .run_with(Sink.seq(), materializer)
        )
        assert got == [(Windowed("b", 0, 10, [("b", 3)]), {"p": 2})]


class TestTimersAndDemand:
    """Timers and demand."""

    async def test_processing_time_windows_closed_by_the_clock_carry_commit_points(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = (
            TestSource.probe()
            .as_source_with_context(lambda e: ("p", e[1]))
            .windowed(TimeWindows.of(10), key=k0)
            .as_source()
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.request(10)
        await manual_clock.advance(3)
        pub.send_next(("a", 0))
        await manual_clock.advance(8)  # clock 11: [0, 10) closed by the timer
        assert await sub.expect_next() == (Windowed("a", 0, 10, [("a", 0)]), {"p": 0})
        pub.send_next(("a", 1))
        await manual_clock.advance(9)  # clock 20
        assert await sub.expect_next() == (Windowed("a", 10, 20, [("a", 1)]), {"p": 1})
        pub.send_complete()
        await sub.expect_complete()

    async def test_idle_timeout_closes_windows_and_releases_their_offsets(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = (
            TestSource.probe()
            .as_source_with_context(lambda e: ("p", e[2]))
            .windowed(TimeWindows.of(10), key=k0, timestamp=t1, idle_timeout=5)
            .as_source()
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.request(10)
        pub.send_next(("a", 1, 0)).send_next(("a", 4, 1))
        await manual_clock.advance(5.9)  # stream time 4 + 5.9 < 10
        await sub.expect_no_message(0)
        await manual_clock.advance(0.1)
        assert await sub.expect_next() == (
            Windowed("a", 0, 10, [("a", 1, 0), ("a", 4, 1)]),
            {"p": 1},
        )
        pub.send_complete()
        await sub.expect_complete()

    async def test_windows_closed_together_go_out_against_demand_each_with_its_point(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = (
            TestSource.probe()
            .as_source_with_context(lambda e: ("p", e[2]))
            .windowed(TimeWindows.of(10), key=k0, timestamp=t1)
            .as_source()
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.request(1)
        for e in [("a", 1, 0), ("b", 2, 1), ("c", 3, 2)]:
            await pub.expect_request()
            pub.send_next(e)
        await pub.expect_request()
        pub.send_next(("d", 15, 3))  # closes three windows; demand for one
        assert await sub.expect_next() == (Windowed("a", 0, 10, [("a", 1, 0)]), {"p": 0})
        await sub.expect_no_message(0.02)
        await pub.expect_no_message(0)  # nothing pulled while windows are pending
        sub.request(2)
        assert [c for _, c in [await sub.expect_next(), await sub.expect_next()]] == [
            {"p": 1},
            {"p": 2},
        ]
        pub.send_complete()
        sub.request(1)
        assert await sub.expect_next() == (Windowed("d", 10, 20, [("d", 15, 3)]), {"p": 3})
        await sub.expect_complete()


class TestReferenceModel:
    """The commit point against the brute-force reference model."""

    @SETTINGS
    @given(spec=SPECS, data=placed(), on_update=st.booleans(), boundaries=st.booleans())
    async def test_the_commit_point_matches_the_reference(
        self, spec: Any, data: Any, on_update: bool, boundaries: bool
    ) -> None:
        """Windows and commit points equal the reference model's; and the safety rule itself:
        no record at or below an emitted commit point appears in a later emission."""
        elems, where, bad = data
        model = CommitModel(spec, on_update, where)
        for e in elems:
            if e[2] in bad:
                model.see(e)  # skipped by resume: seen, done
            else:
                model.feed(e)
        model.finish()

        def ts(e: Elem) -> Any:
            if e[2] in bad:
                raise ValueError("bad")
            return e[1]

        flow = (
            FlowWithContext[Any, Any, Any, Any, Any]()
            .windowed(
                spec,
                key=k0,
                timestamp=ts,
                zero=tuple,
                aggregate=lambda acc, e: (*acc, e[2]),
                merge=lambda a, b: a + b,
                emit=EmitStrategy.on_window_update()
                if on_update
                else EmitStrategy.on_window_close(),
            )
            .with_attributes(Attributes.supervision_strategy(resuming_decider))
        )
        mat = Materializer(name="windows-ctx-prop")
        logging.getLogger("reactive").disabled = True
        try:
            async with mat:
                src: Any = Source.from_iterable([(e, where[e[2]]) for e in elems])
                if boundaries:
                    src = src.async_boundary()
                src = src.via(flow.as_flow())
                if boundaries:
                    src = src.async_boundary()
                got = await src.run_with(Sink.seq(), mat)
        finally:
            logging.getLogger("reactive").disabled = False
        assert [w for w, _ in got] == model.out
        assert [c for _, c in got] == model.points
        for i, (_, point) in enumerate(got):
            for w, _ in got[i + 1 :]:
                for rid in w.value:
                    p, o = where[rid]
                    assert o > point.get(p, -math.inf), (rid, point, w)
        if got and not on_update:
            # Everything is done once the last window went out.
            last = {}
            for p, o in where.values():
                last[p] = max(last.get(p, o), o)
            assert got[-1][1] == last

    def test_the_registry_drops_stale_entries_behind_a_long_held_offset(self) -> None:
        """Released holders above a long-held offset cannot be popped from the heap; the
        registry compacts it so memory follows the open windows, not the closed ones."""
        from reactive._ops.windows_context import _Holder, _Registry

        reg = _Registry()
        old = _Holder()
        reg.first["p"] = reg.last["p"] = 0
        reg.hold(old, "p", 0)  # e.g. a session that stays open
        for pos in range(1, 10_001):
            reg.last["p"] = pos
            h = _Holder()
            reg.hold(h, "p", pos)
            reg.release(h)
        assert len(reg.heaps["p"]) < 300
        assert reg.points() == {}  # offset 0 is still held
        reg.release(old)
        assert reg.points() == {"p": 10_000}

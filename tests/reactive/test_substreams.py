"""Nesting and substreams: dynamic ports, flat_map_*, switch_map, prefix_and_tail,
group_by, split_*, SubFlow exits, concat_lazy / prepend_lazy."""

from __future__ import annotations

from typing import Any

import pytest

from reactive import (
    AbruptTerminationError,
    Attributes,
    Flow,
    IllegalGraphError,
    Keep,
    Materializer,
    NotUsed,
    Sink,
    Source,
    SubscriptionTimeoutError,
    Supervision,
    TooManySubstreamsError,
)
from reactive._dsl.subflow import SubFlow
from reactive.stage import SubSinkInlet, SubSourceOutlet
from reactive.testkit import ManualClock, TestSink, TestSource


class Boom(Exception):
    pass


def failing_after(xs: list[Any], msg: str) -> Any:
    """The elements of ``xs``, then a failure with ``Boom(msg)``."""

    def check(x: Any) -> Any:
        if x is _END:
            raise Boom(msg)
        return x

    return Source.from_iterable([*xs, _END]).map(check)


_END = object()


def raw_group_by(n: int, key: Any) -> Flow[Any, Any, Any]:
    """The group_by stage alone: a Flow emitting one Source per key."""
    from reactive._ops.nesting import GroupBy

    return Flow.from_graph(GroupBy(n, key))


async def seq(src: Any, mat: Materializer) -> list[Any]:
    return await src.run_with(Sink.seq(), mat)  # type: ignore[no-any-return]


# -- flat_map_concat / flat_map_merge ----------
async def test_flat_map_concat_is_sequential(materializer: Materializer) -> None:
    src = Source.from_iterable([1, 2, 3]).flat_map_concat(lambda x: Source.from_iterable([x] * x))
    assert await seq(src, materializer) == [1, 2, 2, 3, 3, 3]


async def test_flat_map_concat_empty_inner_and_outer(materializer: Materializer) -> None:
    src = Source.from_iterable([0, 2, 0]).flat_map_concat(lambda x: Source.from_iterable(range(x)))
    assert await seq(src, materializer) == [0, 1]
    assert await seq(Source.empty().flat_map_concat(Source.single), materializer) == []


async def test_flat_map_concat_consumes_one_inner_at_a_time(materializer: Materializer) -> None:
    inner1, inner2 = TestSource.probe(), TestSource.probe()
    inners = iter([inner1, inner2])
    probes: list[Any] = []

    def f(_: int) -> Any:
        return next(inners).map_materialized_value(lambda p: probes.append(p) or p)

    sub = Source.from_iterable([1, 2]).flat_map_concat(f).run_with(TestSink.probe(), materializer)
    sub.request(10)
    await _until(lambda: len(probes) == 1)
    p1 = probes[0]
    await p1.expect_request()
    p1.send_next("a")
    await sub.expect_next("a")
    assert len(probes) == 1  # the second inner source is not materialized yet
    p1.send_complete()
    await _until(lambda: len(probes) == 2)
    p2 = probes[1]
    await p2.expect_request()
    p2.send_next("b").send_complete()
    await sub.expect_next("b")
    await sub.expect_complete()


async def _idle(rounds: int = 50) -> None:
    import asyncio

    for _ in range(rounds):
        await asyncio.sleep(0)


async def _until(cond: Any, rounds: int = 200) -> None:
    import asyncio

    for _ in range(rounds):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def test_flat_map_merge_interleaves_and_keeps_inner_order(materializer: Materializer) -> None:
    src = Source.from_iterable(range(4)).flat_map_merge(
        4, lambda x: Source.from_iterable([(x, i) for i in range(5)])
    )
    out = await seq(src, materializer)
    assert sorted(out) == [(x, i) for x in range(4) for i in range(5)]
    for x in range(4):
        assert [e for e in out if e[0] == x] == [(x, i) for i in range(5)]


@pytest.mark.parametrize("fast", [True, False], ids=["batches", "plain"])
async def test_flat_map_merge_hands_over_batches_within_demand(fast: bool) -> None:
    """Inner sources that speak the batch protocol hand over up to 16 elements at once;
    downstream still gets exactly what it requested, each inner in its own order."""
    async with Materializer(fast_paths=fast) as mat:
        probe = (
            Source.from_iterable(range(3))
            .flat_map_merge(3, lambda x: Source.from_iterable([(x, i) for i in range(40)]))
            .run_with(TestSink.probe(), mat)
        )
        got: list[Any] = []
        for k in (1, 5, 17, 2):
            probe.request(k)
            for _ in range(k):
                got.append(await probe.expect_next())
            await probe.expect_no_message(0.01)
        probe.request(1000)
        while len(got) < 120:
            got.append(await probe.expect_next())
        await probe.expect_complete()
    for x in range(3):
        assert [e for e in got if e[0] == x] == [(x, i) for i in range(40)]


async def test_flat_map_merge_limits_breadth(materializer: Materializer) -> None:
    materialized: list[int] = []
    probes: list[Any] = []

    def f(x: int) -> Any:
        materialized.append(x)
        return TestSource.probe().map_materialized_value(lambda p: probes.append(p) or p)

    sub = (
        Source.from_iterable(range(5)).flat_map_merge(2, f).run_with(TestSink.probe(), materializer)
    )
    sub.request(100)
    await _until(lambda: len(probes) == 2)
    await _idle()
    assert materialized == [0, 1]
    probes[0].send_complete()
    await _until(lambda: len(probes) == 3)
    assert materialized == [0, 1, 2]
    probes[1].send_next("x")
    await sub.expect_next("x")
    for p in probes[1:]:
        p.send_complete()
    await _until(lambda: len(probes) == 5)
    for p in probes[3:]:
        p.send_complete()
    await sub.expect_complete()


async def test_flat_map_merge_inner_failure_fails_stream(materializer: Materializer) -> None:
    src = Source.from_iterable([1, 2]).flat_map_merge(
        2, lambda x: Source.failed(Boom("inner")) if x == 2 else Source.never()
    )
    with pytest.raises(Boom, match="inner"):
        await seq(src, materializer)


async def test_flat_map_function_failure_and_resume(materializer: Materializer) -> None:
    def f(x: int) -> Any:
        if x == 2:
            raise Boom("f")
        return Source.single(x)

    with pytest.raises(Boom, match="f"):
        await seq(Source.from_iterable([1, 2, 3]).flat_map_concat(f), materializer)
    resumed = (
        Source.from_iterable([1, 2, 3])
        .flat_map_concat(f)
        .with_attributes(Attributes.supervision_strategy(lambda e: Supervision.resume))
    )
    assert await seq(resumed, materializer) == [1, 3]


async def test_flat_map_upstream_failure(materializer: Materializer) -> None:
    src = Source.failed(Boom("up")).flat_map_concat(Source.single)
    with pytest.raises(Boom, match="up"):
        await seq(src, materializer)


async def test_flat_map_downstream_cancel_cancels_inner(materializer: Materializer) -> None:
    probes: list[Any] = []
    src = Source.single(1).flat_map_concat(
        lambda _: TestSource.probe().map_materialized_value(lambda p: probes.append(p) or p)
    )
    sub = src.run_with(TestSink.probe(), materializer)
    sub.request(1)
    await _until(lambda: len(probes) == 1)
    p = probes[0]
    await p.expect_request()
    sub.cancel()
    await p.expect_cancellation()


async def test_flat_map_rejects_bad_breadth() -> None:
    with pytest.raises(ValueError):
        Source.single(1).flat_map_merge(0, Source.single)


# -- switch_map ----------
async def test_switch_map_cancels_previous_inner(materializer: Materializer) -> None:
    probes: list[Any] = []
    up, sub = (
        TestSource.probe()
        .switch_map(
            lambda x: TestSource.probe().map_materialized_value(lambda p: probes.append(p) or p)
        )
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(10)
    await up.expect_request()
    up.send_next(1)
    await _until(lambda: len(probes) == 1)
    await probes[0].expect_request()
    probes[0].send_next("a1")
    await sub.expect_next("a1")
    up.send_next(2)
    await probes[0].expect_cancellation()
    await _until(lambda: len(probes) == 2)
    await probes[1].expect_request()
    probes[1].send_next("b1")
    await sub.expect_next("b1")
    up.send_complete()
    probes[1].send_next("b2").send_complete()
    await sub.expect_next("b2")
    await sub.expect_complete()


async def test_switch_map_inner_failure(materializer: Materializer) -> None:
    src = Source.single(1).switch_map(lambda _: Source.failed(Boom("sw")))
    with pytest.raises(Boom, match="sw"):
        await seq(src, materializer)


# -- prefix_and_tail ----------
async def test_prefix_and_tail(materializer: Materializer) -> None:
    prefix, tail = (
        await Source.from_iterable(range(6)).prefix_and_tail(2).run_with(Sink.head(), materializer)
    )
    assert prefix == [0, 1]
    assert await seq(tail, materializer) == [2, 3, 4, 5]


async def test_prefix_and_tail_short_and_zero(materializer: Materializer) -> None:
    prefix, tail = (
        await Source.from_iterable([1]).prefix_and_tail(3).run_with(Sink.head(), materializer)
    )
    assert prefix == [1]
    assert await seq(tail, materializer) == []
    prefix, tail = (
        await Source.from_iterable([1, 2]).prefix_and_tail(0).run_with(Sink.head(), materializer)
    )
    assert prefix == []
    assert await seq(tail, materializer) == [1, 2]


async def test_prefix_and_tail_failure_before_and_after_prefix(materializer: Materializer) -> None:
    with pytest.raises(Boom):
        await Source.failed(Boom("early")).prefix_and_tail(1).run_with(Sink.head(), materializer)
    src = failing_after([1, 2], "late")
    prefix, tail = await src.prefix_and_tail(1).run_with(Sink.head(), materializer)
    assert prefix == [1]
    with pytest.raises(Boom, match="late"):
        await seq(tail, materializer)


async def test_prefix_and_tail_tail_materialized_twice_fails(materializer: Materializer) -> None:
    _, tail = (
        await Source.from_iterable(range(3)).prefix_and_tail(1).run_with(Sink.head(), materializer)
    )
    first = tail.run_with(Sink.seq(), materializer)
    with pytest.raises(IllegalGraphError, match="only once"):
        await seq(tail, materializer)
    assert await first == [1, 2]


async def test_prefix_and_tail_subscription_timeout(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    up, pair = (
        TestSource.probe().prefix_and_tail(1).to_mat(Sink.head(), Keep.both).run(materializer)
    )
    await up.expect_request()
    up.send_next(1)
    prefix, tail = await pair
    assert prefix == [1]
    await manual_clock.advance(4.9)
    await up.expect_no_message(0.01)
    await manual_clock.advance(0.2)
    cause = await up.expect_cancellation()
    assert isinstance(cause, SubscriptionTimeoutError)
    with pytest.raises(SubscriptionTimeoutError, match="materialized"):
        await seq(tail, materializer)


async def test_prefix_and_tail_tail_cancel(materializer: Materializer) -> None:
    up, pair = (
        TestSource.probe().prefix_and_tail(0).to_mat(Sink.head(), Keep.both).run(materializer)
    )
    _, tail = await pair
    res = tail.take(1).run_with(Sink.seq(), materializer)
    await up.expect_request()
    up.send_next("x")
    assert await res == ["x"]
    await up.expect_cancellation()


# -- group_by ----------
async def test_group_by_merge_substreams(materializer: Materializer) -> None:
    src = Source.from_iterable(range(12)).group_by(3, lambda x: x % 3).map(lambda x: x * 10)
    assert isinstance(src, SubFlow)
    out = await seq(src.merge_substreams(), materializer)
    assert sorted(out) == [x * 10 for x in range(12)]
    for k in range(3):
        assert [x for x in out if (x // 10) % 3 == k] == [x * 10 for x in range(k, 12, 3)]


async def test_group_by_fold_per_substream(materializer: Materializer) -> None:
    src = (
        Source.from_iterable(["a1", "b1", "a2", "c1", "b2"])
        .group_by(10, lambda s: s[0])
        .fold("", lambda acc, s: acc + s)
        .merge_substreams()
    )
    assert sorted(await seq(src, materializer)) == ["a1a2", "b1b2", "c1"]


async def test_group_by_too_many_substreams(materializer: Materializer) -> None:
    src = Source.from_iterable(range(10)).group_by(2, lambda x: x).merge_substreams()
    with pytest.raises(TooManySubstreamsError, match="max_substreams=2"):
        await seq(src, materializer)


async def test_group_by_closed_substream_drops_and_counts(materializer: Materializer) -> None:
    # Each substream takes one element then cancels: later elements of its key are
    # dropped, and the closed key still counts towards the limit.
    keys = [1, 1, 2, 2, 1]
    src = Source.from_iterable(keys).group_by(5, lambda x: x).take(1).merge_substreams()
    assert sorted(await seq(src, materializer)) == [1, 2]
    src = Source.from_iterable([1, 2, 3]).group_by(2, lambda x: x).take(1).concat_substreams()
    with pytest.raises(TooManySubstreamsError):
        await seq(src, materializer)


async def test_group_by_allow_closed_substream_recreation(materializer: Materializer) -> None:
    probes = (
        TestSource.probe()
        .group_by(1, lambda x: x, allow_closed_substream_recreation=True)
        .take(1)
        .concat_substreams()
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    up, sub = probes
    sub.request(10)
    await up.expect_request()
    up.send_next(7)
    await sub.expect_next(7)
    await up.expect_request()
    up.send_next(7)
    await sub.expect_next(7)
    up.send_complete()
    await sub.expect_complete()


async def test_group_by_key_failure_and_resume(materializer: Materializer) -> None:
    def key(x: int) -> int:
        if x == 3:
            raise Boom("key")
        return x % 2

    with pytest.raises(Boom, match="key"):
        await seq(Source.from_iterable(range(5)).group_by(2, key).merge_substreams(), materializer)
    resumed = (
        Source.from_iterable(range(5))
        .group_by(2, key)
        .merge_substreams()
        .with_attributes(Attributes.supervision_strategy(lambda e: Supervision.resume))
    )
    assert sorted(await seq(resumed, materializer)) == [0, 1, 2, 4]


async def test_group_by_upstream_failure_fails_substreams(materializer: Materializer) -> None:
    src = failing_after([1, 2], "up")
    out = src.group_by(4, lambda x: x).merge_substreams()
    with pytest.raises(Boom, match="up"):
        await seq(out, materializer)


async def test_group_by_backpressure_from_one_substream(materializer: Materializer) -> None:
    up, subs = (
        TestSource.probe()
        .via(raw_group_by(4, lambda x: x % 2))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    subs.request(2)
    await up.expect_request()
    up.send_next(0)
    even = await subs.expect_next()
    even_probe = even.run_with(TestSink.probe(), materializer)
    even_probe.request(1)
    await even_probe.expect_next(0)
    await up.expect_request()
    up.send_next(2)  # the even substream has no demand: group_by holds it
    await up.expect_no_message(0.02)
    even_probe.request(1)
    await even_probe.expect_next(2)
    await up.expect_request()
    up.send_complete()
    await even_probe.expect_complete()
    await subs.expect_complete()


async def test_group_by_substream_subscription_timeout(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    up, subs = (
        TestSource.probe()
        .via(raw_group_by(4, lambda x: x))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    subs.request(5)
    await up.expect_request()
    up.send_next(1)
    late = await subs.expect_next()
    await manual_clock.advance(5.1)
    with pytest.raises(SubscriptionTimeoutError):
        await seq(late, materializer)
    # The timed-out key is closed: its elements are dropped, others open new substreams.
    await up.expect_request()
    up.send_next(1)
    await up.expect_request()
    up.send_next(2)
    s2 = await subs.expect_next()
    res = seq(s2, materializer)
    up.send_complete()
    assert await res == [2]
    await subs.expect_complete()


async def test_group_by_main_cancel_keeps_substreams(materializer: Materializer) -> None:
    up, subs = (
        TestSource.probe()
        .via(raw_group_by(4, lambda x: x))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    subs.request(1)
    await up.expect_request()
    up.send_next("a")
    s = await subs.expect_next()
    sp = s.run_with(TestSink.probe(), materializer)
    subs.cancel()
    sp.request(5)
    await sp.expect_next("a")
    await up.expect_request()
    up.send_next("a")
    await sp.expect_next("a")
    sp.cancel()
    await up.expect_cancellation()


# -- split_when / split_after ----------
async def test_split_when(materializer: Materializer) -> None:
    src = Source.from_iterable([1, 2, 3, 4, 5, 6]).split_when(lambda x: x % 3 == 0)
    out = await seq(src.grouped(10).concat_substreams(), materializer)
    assert out == [[1, 2], [3, 4, 5], [6]]


async def test_split_when_first_element_matches(materializer: Materializer) -> None:
    src = Source.from_iterable([3, 1, 3]).split_when(lambda x: x == 3).grouped(10)
    assert await seq(src.concat_substreams(), materializer) == [[3, 1], [3]]


async def test_split_after(materializer: Materializer) -> None:
    src = Source.from_iterable([1, 2, 3, 4, 5, 6, 7]).split_after(lambda x: x % 3 == 0)
    out = await seq(src.grouped(10).concat_substreams(), materializer)
    assert out == [[1, 2, 3], [4, 5, 6], [7]]
    src = Source.from_iterable([3, 3]).split_after(lambda x: x == 3)
    assert await seq(src.grouped(10).merge_substreams(), materializer) == [[3], [3]]


async def test_split_empty_and_failure(materializer: Materializer) -> None:
    assert await seq(Source.empty().split_when(bool).concat_substreams(), materializer) == []
    src = failing_after([1, 2], "sp").split_when(lambda x: False)
    with pytest.raises(Boom, match="sp"):
        await seq(src.concat_substreams(), materializer)


async def test_split_cancelled_substream_is_drained(materializer: Materializer) -> None:
    src = Source.from_iterable([1, 2, 3, 10, 11, 20]).split_when(lambda x: x % 10 == 0).take(1)
    assert await seq(src.concat_substreams(), materializer) == [1, 10, 20]


async def test_split_predicate_failure(materializer: Materializer) -> None:
    def p(x: int) -> bool:
        if x == 2:
            raise Boom("pred")
        return False

    with pytest.raises(Boom, match="pred"):
        await seq(Source.from_iterable([1, 2, 3]).split_when(p).concat_substreams(), materializer)


# -- SubFlow ----------
async def test_subflow_offers_flow_operators_and_exits(materializer: Materializer) -> None:
    sub = Source.from_iterable(range(10)).group_by(2, lambda x: x % 2)
    chained = sub.filter(lambda x: x > 1).map(lambda x: x + 1).via(Flow().take(2)).named("per")
    assert isinstance(chained, SubFlow)
    out = await seq(chained.merge_substreams_with_parallelism(2), materializer)
    assert sorted(out) == [3, 4, 5, 6]


async def test_subflow_on_a_flow_parent(materializer: Materializer) -> None:
    flow = Flow().split_after(lambda x: x == 0).fold(0, lambda a, b: a + b).concat_substreams()
    assert isinstance(flow, Flow)
    assert await seq(Source.from_iterable([1, 2, 0, 5, 0, 7]).via(flow), materializer) == [3, 5, 7]


async def test_subflow_to_sink_runs_each_substream(materializer: Materializer) -> None:
    seen: list[tuple[int, int]] = []
    graph = (
        Source.from_iterable(range(6))
        .group_by(3, lambda x: x % 3)
        .map(lambda x: (x % 3, x))
        .to(Sink.foreach(seen.append))
    )
    assert graph.run(materializer) is NotUsed  # the parent's materialized value
    await _until(lambda: len(seen) == 6)
    for k in range(3):
        assert [x for key, x in seen if key == k] == [k, k + 3]


async def test_subflow_fan_in_operators_apply_per_substream(materializer: Materializer) -> None:
    sub = Source.from_iterable([1, 2, 3, 4]).split_when(lambda x: x % 2 == 1)
    out = await seq(sub.concat(Source.single(0)).zip_with_index().concat_substreams(), materializer)
    assert out == [(1, 0), (2, 1), (0, 2), (3, 0), (4, 1), (0, 2)]


# -- concat_lazy / prepend_lazy ----------
async def test_concat_lazy_and_prepend_lazy(materializer: Materializer) -> None:
    src = Source.from_iterable([1, 2]).concat_lazy(Source.single(3)).prepend_lazy(Source.single(0))
    assert await seq(src, materializer) == [0, 1, 2, 3]
    flow = Flow().prepend_lazy(Source.single("p"))
    assert await seq(Source.single("x").via(flow), materializer) == ["p", "x"]


async def test_concat_lazy_does_not_pull_second_early(materializer: Materializer) -> None:
    seconds: list[Any] = []
    b = TestSource.probe().map_materialized_value(lambda p: seconds.append(p) or p)
    pa, sub = (
        TestSource.probe().concat_lazy(b).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    sub.request(5)
    await pa.expect_request()
    await _until(lambda: len(seconds) == 1)  # materialized up-front ...
    pb = seconds[0]
    await pb.expect_no_message(0.02)  # ... but not pulled while the first runs
    pa.send_next(1).send_complete()
    await sub.expect_next(1)
    await pb.expect_request()
    pb.send_next(2).send_complete()
    await sub.expect_next(2)
    await sub.expect_complete()


# -- the handles themselves ----------
async def test_sub_ports_closed_when_parent_stops(materializer: Materializer) -> None:
    from reactive.stage import GraphStage, GraphStageLogic, OutHandler

    made: dict[str, Any] = {}

    class Parent(GraphStage):  # type: ignore[type-arg]
        def __init__(self) -> None:
            from reactive import SourceShape
            from reactive.stage import Outlet

            self.shape = SourceShape(Outlet("Parent.out"))

        def create_logic(self, attributes: Any) -> GraphStageLogic:
            shape = self.shape

            class L(GraphStageLogic, OutHandler):
                def __init__(self) -> None:
                    super().__init__(shape)
                    self.set_handler(shape.out, self)

                def pre_start(self) -> None:
                    inlet = SubSinkInlet(self, "child_in", on_push=lambda: None)
                    made["probe"] = inlet.materialize(TestSource.probe())
                    made["in"] = inlet
                    outlet = SubSourceOutlet(self, "child_out", on_pull=lambda: None)
                    made["out"] = outlet
                    made["sink"] = outlet.source.run_with(Sink.seq(), self.materializer)
                    inlet.pull()

                def on_pull(self) -> None:
                    pass

            return L()

    sub = Source.from_graph(Parent()).run_with(TestSink.probe(), materializer)
    await _until(lambda: "probe" in made)
    assert made["in"].has_been_pulled() and not made["in"].is_closed()
    await made["probe"].expect_request()
    sub.cancel()
    await made["probe"].expect_cancellation()
    with pytest.raises(AbruptTerminationError):
        await made["sink"]
    assert made["out"].is_closed() and made["in"].is_closed()


async def test_sub_source_outlet_takes_batches_within_demand(materializer: Materializer) -> None:
    """A nested stream whose first stage speaks the batch protocol pulls ``demand`` > 1
    elements at once; the parent answers with one ``_Batch`` of at most that many (as the
    partitioned Kafka source does), never more."""
    from reactive import SourceShape
    from reactive._errors import PortStateError
    from reactive._stage.logic import _Batch
    from reactive.stage import GraphStage, GraphStageLogic, OutHandler, Outlet

    items = list(range(5000))
    demands: list[int] = []
    errors: list[BaseException] = []
    made: dict[str, Any] = {}

    class Parent(GraphStage):  # type: ignore[type-arg]
        def __init__(self) -> None:
            self.shape = SourceShape(Outlet("Parent.out"))

        def create_logic(self, attributes: Any) -> GraphStageLogic:
            shape = self.shape

            class L(GraphStageLogic, OutHandler):
                def __init__(self) -> None:
                    super().__init__(shape)
                    self.set_handler(shape.out, self)
                    self.next = 0

                def pre_start(self) -> None:
                    self.sub = SubSourceOutlet(self, "child", on_pull=self.child_pulled)
                    made["done"] = self.sub.source.map(lambda x: x).run_with(
                        Sink.seq(), self.materializer
                    )

                def child_pulled(self) -> None:
                    n = self.sub.demand
                    demands.append(n)
                    if 1 < n < len(items) - self.next and not errors:
                        try:  # one more than asked: refused, nothing sent
                            self.sub.push(_Batch(items[self.next : self.next + n + 1]))
                        except PortStateError as exc:
                            errors.append(exc)
                    batch = _Batch(items[self.next : self.next + n])
                    self.next += len(batch)
                    self.sub.push(batch if len(batch) > 1 else batch[0])
                    if self.next >= len(items):
                        self.sub.complete()
                        self.complete_stage()

                def on_pull(self) -> None:
                    pass

            return L()

    await Source.from_graph(Parent()).run_with(Sink.ignore(), materializer)
    assert await made["done"] == items
    assert max(demands) > 1 and len(demands) < len(items)  # batches were taken
    assert len(errors) == 1 and "batch of" in str(errors[0]), demands

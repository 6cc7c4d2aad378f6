"""Type tests: mypy must accept every ``assert_type`` here (run by tests/test_typing.py).

Never executed: it pins the inference users rely on (element and materialized types
through operators, ``Keep`` combiners, sinks, ``run_with``, SubFlow exits).
"""

from __future__ import annotations

import asyncio
from typing import Any, assert_type

from reactive import (
    Done,
    Flow,
    FlowMonitor,
    Keep,
    KillSwitches,
    NotUsed,
    OverflowStrategy,
    RestartFlow,
    RestartSettings,
    RestartSink,
    RestartSource,
    RunnableGraph,
    Sink,
    Source,
    UniqueKillSwitch,
)
from reactive._dsl.subflow import SubFlow
from reactive._keep import DoneType, NotUsedType
from reactive.rs import Publisher, Subscriber


async def sources() -> None:
    ints = Source.from_iterable([1, 2, 3])
    assert_type(ints, Source[int, NotUsedType])
    assert_type(ints.map(str), Source[str, NotUsedType])
    assert_type(ints.filter(lambda x: x > 1), Source[int, NotUsedType])
    assert_type(ints.map_concat(lambda x: [str(x)]), Source[str, NotUsedType])
    assert_type(ints.scan(0.0, lambda acc, x: acc + x), Source[float, NotUsedType])
    assert_type(ints.fold("", lambda acc, x: acc + str(x)), Source[str, NotUsedType])
    assert_type(ints.reduce(lambda a, b: a + b), Source[int, NotUsedType])
    assert_type(ints.grouped(2), Source[list[int], NotUsedType])
    assert_type(ints.sliding(2), Source[list[int], NotUsedType])
    assert_type(ints.grouped_within(2, 1.0), Source[list[int], NotUsedType])
    assert_type(ints.zip_with_index(), Source[tuple[int, int], NotUsedType])
    assert_type(ints.take(1).drop(1).throttle(1, 1.0), Source[int, NotUsedType])
    assert_type(ints.buffer(4, OverflowStrategy.backpressure), Source[int, NotUsedType])
    assert_type(ints.intersperse(","), Source[int | str, NotUsedType])
    assert_type(ints.recover(lambda exc: -1), Source[int, NotUsedType])
    assert_type(ints.keep_alive(1.0, lambda: "tick"), Source[int | str, NotUsedType])
    assert_type(
        ints.stateful_map(lambda: 0, lambda s, x: (s + x, str(s)), None),
        Source[str, NotUsedType],
    )
    assert_type(
        ints.conflate_with_seed(lambda x: [x], lambda acc, x: acc), Source[list[int], NotUsedType]
    )

    async def slow(x: int) -> bytes:
        return b""

    assert_type(ints.map_async(2, slow), Source[bytes, NotUsedType])
    assert_type(ints.map_async_unordered(2, slow), Source[bytes, NotUsedType])
    assert_type(ints.flat_map_concat(lambda x: Source.single(str(x))), Source[str, NotUsedType])
    assert_type(
        ints.flat_map_merge(2, lambda x: Source.repeat(x * 1.0)), Source[float, NotUsedType]
    )
    assert_type(
        ints.prefix_and_tail(1),
        Source[tuple[list[int], Source[int, NotUsedType]], NotUsedType],
    )

    # fan-in
    strs = Source.single("a")
    assert_type(ints.zip(strs), Source[tuple[int, str], NotUsedType])
    assert_type(ints.zip_with(strs, lambda a, b: b * a), Source[str, NotUsedType])
    assert_type(ints.merge(strs), Source[int | str, NotUsedType])
    assert_type(ints.concat(ints), Source[int, NotUsedType])
    assert_type(
        ints.zip_mat(strs, Keep.both), Source[tuple[int, str], tuple[NotUsedType, NotUsedType]]
    )

    # materialized values
    ticks = Source.tick(1.0, 1.0, "tick")
    assert_type(ticks.map(len).to_mat(Sink.ignore(), Keep.left).run().cancel(), bool)
    watched = ints.watch_termination()
    assert_type(watched, Source[int, asyncio.Future[DoneType]])
    assert_type(
        ints.watch_termination(Keep.both), Source[int, tuple[NotUsedType, asyncio.Future[DoneType]]]
    )
    assert_type(ints.monitor(), Source[int, FlowMonitor])
    assert_type(ints.map_materialized_value(lambda _: 42), Source[int, int])

    g = ints.map(str).to_mat(Sink.seq(), Keep.both)
    assert_type(g, RunnableGraph[tuple[NotUsedType, asyncio.Future[list[str]]]])
    assert_type(ints.to(Sink.seq()), RunnableGraph[NotUsedType])
    assert_type(ints.to_mat(Sink.head(), Keep.right).run(), asyncio.Future[int])
    assert_type(ints.run_with(Sink.seq()), asyncio.Future[list[int]])
    assert_type(ints.run_with(Sink.head_option()), asyncio.Future[int | None])
    assert_type(ints.run_with(Sink.fold(0.5, lambda a, x: a + x)), asyncio.Future[float])
    assert_type(ints.run_with(Sink.ignore()), asyncio.Future[DoneType])
    assert_type(ints.run_fold("", lambda a, x: a + str(x)), asyncio.Future[str])
    assert_type(ints.run_reduce(lambda a, b: a + b), asyncio.Future[int])
    assert_type(ints.run_foreach(print), asyncio.Future[DoneType])
    result: list[int] = await ints.run_with(Sink.seq())
    assert_type(result, list[int])
    assert_type(await ints.run_with(Sink.ignore()), DoneType)
    assert_type(Done, DoneType)
    assert_type(NotUsed, NotUsedType)

    # fluent blueprint methods keep the precise type
    assert_type(ints.named("x").async_boundary(), Source[int, NotUsedType])


def flows() -> None:
    f = Flow[int]()
    assert_type(f, Flow[int, int, NotUsedType])
    g = f.map(str).filter(bool)
    assert_type(g, Flow[int, str, NotUsedType])
    assert_type(g.to(Sink.seq()), Sink[int, NotUsedType])
    assert_type(g.to_mat(Sink.seq(), Keep.right), Sink[int, asyncio.Future[list[str]]])
    assert_type(Source.from_iterable([1]).via(g), Source[str, NotUsedType])
    assert_type(
        Source.from_iterable([1]).via_mat(g.watch_termination(), Keep.right),
        Source[str, asyncio.Future[DoneType]],
    )
    assert_type(f.via(g), Flow[int, str, NotUsedType])
    assert_type(
        g.run_with(Source.from_iterable([1]), Sink.seq()),
        tuple[NotUsedType, asyncio.Future[list[str]]],
    )
    assert_type(Flow.from_function(str), Flow[object, str, NotUsedType])
    assert_type(Flow[int]().grouped(3), Flow[int, list[int], NotUsedType])
    # an untyped stage goes through via() with an unknown element type
    assert_type(Source.single(1).via(KillSwitches.single()), Source[Any, NotUsedType])
    assert_type(
        Source.single(1).via_mat(KillSwitches.single(), Keep.right),
        Source[Any, UniqueKillSwitch],
    )


def sinks() -> None:
    s: Sink[str, asyncio.Future[list[str]]] = Sink.seq()
    assert_type(s.contramap(str), Sink[object, asyncio.Future[list[str]]])
    assert_type(s.run_with(Source.tick(1.0, 1.0, "x")).cancel(), bool)
    assert_type(s.map_materialized_value(lambda f: 1), Sink[str, int])


def reactive_streams_interop(publisher: Publisher[int], subscriber: Subscriber[str]) -> None:
    assert_type(Source.from_publisher(publisher), Source[int, NotUsedType])
    assert_type(Source.as_subscriber(), Source[Any, Subscriber[Any]])
    bytes_out: Sink[bytes, Publisher[bytes]] = Sink.as_publisher()
    assert_type(Source.single(b"x").run_with(bytes_out), Publisher[bytes])
    assert_type(Sink.from_subscriber(subscriber), Sink[str, NotUsedType])


def subflows() -> None:
    ints = Source.from_iterable(range(10))
    sub = ints.group_by(4, lambda x: x % 2)
    assert_type(sub, SubFlow[int, NotUsedType, Source[Any, Any]])
    assert_type(sub.map(str).merge_substreams(), Source[str, NotUsedType])
    assert_type(sub.fold(0, lambda a, x: a + x).concat_substreams(), Source[int, NotUsedType])
    assert_type(ints.split_when(lambda x: x == 3).to(Sink.ignore()), RunnableGraph[NotUsedType])
    flow_sub = Flow[int]().split_after(lambda x: x > 2).map(float)
    assert_type(flow_sub.merge_substreams_with_parallelism(2), Flow[int, float, NotUsedType])
    assert_type(flow_sub.to(Sink.seq()), Sink[int, NotUsedType])


def lazy_and_resource() -> None:
    # issue 12 item 14: lazy and resource sources
    assert_type(Source.maybe(), Source[Any, asyncio.Future[Any]])
    assert_type(Source.cycle(lambda: [1, 2]), Source[int, NotUsedType])

    def create() -> list[str]:
        return ["a"]

    def read(r: list[str]) -> str | None:
        return r.pop() if r else None

    def close(r: list[str]) -> None:
        r.clear()

    assert_type(Source.unfold_resource(create, read, close), Source[str, NotUsedType])
    assert_type(Source.lazy_single(lambda: "x"), Source[str, NotUsedType])
    assert_type(
        Source.lazy_source(lambda: Source.from_iterable([1])),
        Source[int, asyncio.Future[NotUsedType]],
    )
    assert_type(
        Flow.lazy_flow(lambda: Flow[int]().map(str)), Flow[int, str, asyncio.Future[NotUsedType]]
    )
    assert_type(Sink.lazy_sink(Sink.ignore), Sink[object, asyncio.Future[asyncio.Future[DoneType]]])

    async def a_source() -> Source[int, NotUsedType]:
        return Source.from_iterable([1])

    async def a_flow() -> Flow[int, str, NotUsedType]:
        return Flow[int]().map(str)

    async def a_sink() -> Sink[object, asyncio.Future[DoneType]]:
        return Sink.ignore()

    assert_type(Source.lazy_future_source(a_source), Source[int, asyncio.Future[NotUsedType]])
    assert_type(Flow.lazy_future_flow(a_flow), Flow[int, str, asyncio.Future[NotUsedType]])
    assert_type(Flow.future_flow(a_flow()), Flow[int, str, asyncio.Future[NotUsedType]])
    assert_type(
        Sink.lazy_future_sink(a_sink), Sink[object, asyncio.Future[asyncio.Future[DoneType]]]
    )
    assert_type(Sink.future_sink(a_sink()), Sink[object, asyncio.Future[asyncio.Future[DoneType]]])


def rejected() -> None:
    # Each line must stay an error (warn_unused_ignores flags an ignore that is not needed).
    ints = Source.from_iterable([1, 2])
    ints.via(Flow[str]())  # type: ignore[arg-type]
    ints.to(Flow[str]().to(Sink.ignore()))  # type: ignore[arg-type]
    ints.map(lambda x: x.upper())  # type: ignore[attr-defined]
    Flow[int]().run_with(Source.single("a"), Sink.ignore())  # type: ignore[arg-type]


async def keyed_state() -> None:
    from reactive.state import Stores, StoreView

    def empty() -> str:
        return ""

    def concat(s: str, w: str) -> str:
        return s + w

    words = Source.from_iterable(["a", "b"])
    counts = words.aggregate_by_key(
        Stores.in_memory("c"), lambda w: w, lambda: 0, lambda n, _: n + 1
    )
    assert_type(counts, Source[tuple[str, int], StoreView[str, int]])
    both = words.aggregate_by_key(
        Stores.in_memory("c"), lambda w: len(w), empty, concat, combine=Keep.both
    )
    assert_type(both, Source[tuple[int, str], tuple[NotUsedType, StoreView[int, str]]])
    view = counts.to(Sink.ignore()).run()
    assert_type(view.get("a"), int | None)
    assert_type(view.get("a", 0), int)
    lengths = Flow[str]().stateful_map_by_key(
        Stores.in_memory("s"), lambda w: w[0], lambda s, w: ((s or 0) + len(w), len(w))
    )
    assert_type(lengths, Flow[str, int, StoreView[str, int]])


def windows() -> None:
    from reactive import SessionWindows, TimeWindows, Windowed

    pairs = Source.from_iterable([("a", 1.0)])
    tumbling = TimeWindows.of(60)
    assert_type(
        pairs.windowed(tumbling, timestamp=lambda p: p[1]),
        Source[Windowed[None, list[tuple[str, float]]], NotUsedType],
    )
    assert_type(
        pairs.windowed(tumbling, key=lambda p: p[0], timestamp=lambda p: p[1]),
        Source[Windowed[str, list[tuple[str, float]]], NotUsedType],
    )
    assert_type(
        pairs.windowed(tumbling, key=lambda p: p[0], zero=lambda: 0, aggregate=lambda n, p: n + 1),
        Source[Windowed[str, int], NotUsedType],
    )
    assert_type(
        pairs.windowed(
            SessionWindows.with_gap(5), zero=lambda: 0.0, aggregate=lambda s, p: s + p[1]
        ),
        Source[Windowed[None, float], NotUsedType],
    )
    assert_type(
        Flow[int]().windowed(tumbling, key=str),
        Flow[int, Windowed[str, list[int]], NotUsedType],
    )
    sub = Source.from_iterable(range(3)).group_by(2, lambda x: x % 2)
    assert_type(
        sub.windowed(tumbling).merge_substreams(),
        Source[Windowed[None, list[int]], NotUsedType],
    )


def windows_with_context() -> None:
    from reactive import FlowWithContext, SourceWithContext, TimeWindows, Windowed

    pairs = SourceWithContext.from_tuples(Source.from_iterable([(("a", 1.0), ("p", 0))]))
    tumbling = TimeWindows.of(60)
    assert_type(
        pairs.windowed(tumbling, key=lambda e: e[0], zero=lambda: 0, aggregate=lambda n, e: n + 1),
        SourceWithContext[Windowed[str, int], Any, NotUsedType],
    )
    assert_type(
        pairs.windowed(tumbling, timestamp=lambda e: e[1]),
        SourceWithContext[Windowed[None, list[tuple[str, float]]], Any, NotUsedType],
    )
    flow = FlowWithContext[int, str, int, str, NotUsedType]()
    assert_type(
        flow.windowed(tumbling, key=str),
        FlowWithContext[int, str, Windowed[str, list[int]], Any, NotUsedType],
    )


def restarts() -> None:
    settings = RestartSettings(1.0, 2.0, 0.0)
    assert_type(
        RestartSource.with_backoff(settings, lambda: Source.single(1)), Source[int, NotUsedType]
    )
    assert_type(
        RestartFlow.on_failures_with_backoff(settings, lambda: Flow[int]().map(str)),
        Flow[int, str, NotUsedType],
    )
    assert_type(RestartSink.with_backoff(settings, lambda: Sink.seq()), Sink[Any, NotUsedType])

"""Mistakes are caught when the operator is built, with a message naming the operator and
the argument (issue 12, item 9); errors raised inside a fused chain name the operator.

Each case builds one operator with one bad argument: the error must be raised by the
build itself (nothing runs), be a ``TypeError`` (wrong kind) or ``ValueError`` (out of
range), and its message must start with the operator's signature and name the argument.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest

from reactive import (
    Attributes,
    Balance,
    Broadcast,
    Concat,
    Flow,
    FlowWithContext,
    Interleave,
    Materializer,
    Merge,
    MergePreferred,
    MergeSorted,
    OverflowStrategy,
    Partition,
    PortStateError,
    Sink,
    Source,
    Supervision,
    UnzipWith,
    ZipLatestWith,
    ZipN,
    ZipWith,
    ZipWithN,
)
from reactive._checks import NONE_ELEMENT, check, pos_int
from reactive._ops.simple import Scan


def ok(x: Any) -> Any:
    return x


async def aok(x: Any) -> Any:
    return x


S = Source.single(1)
OS = OverflowStrategy.backpressure

# (id, build, expected exception, message prefix, argument named)
Case = tuple[str, Callable[[], Any], type[Exception], str, str]

FLOW_OPS: list[tuple[str, Callable[[Any], Any], type[Exception], str, str]] = [
    ("map", lambda s: s.map(5), TypeError, "map(f): f must be callable, got int 5", "f"),
    ("filter", lambda s: s.filter("x"), TypeError, "filter(p)", "p"),
    ("filter_not", lambda s: s.filter_not(None), TypeError, "filter_not(p)", "p"),
    ("map_concat", lambda s: s.map_concat([1]), TypeError, "map_concat(f)", "f"),
    (
        "stateful_map_concat",
        lambda s: s.stateful_map_concat(1),
        TypeError,
        "stateful_map_concat(factory)",
        "factory",
    ),
    (
        "stateful_map",
        lambda s: s.stateful_map(0, ok),
        TypeError,
        "stateful_map(create, f, on_complete)",
        "create",
    ),
    (
        "stateful_map on_complete",
        lambda s: s.stateful_map(list, ok, 3),
        TypeError,
        "stateful_map(create, f, on_complete)",
        "on_complete",
    ),
    ("scan", lambda s: s.scan(ok, 0), TypeError, "scan(zero, f)", "f"),
    ("scan zero", lambda s: s.scan(None, ok), ValueError, "scan(zero, f)", "zero"),
    (
        "scan_async zero",
        lambda s: s.scan_async(None, aok),
        ValueError,
        "scan_async(zero, f)",
        "zero",
    ),
    (
        "intersperse",
        lambda s: s.intersperse(None),
        ValueError,
        "intersperse(inject, start, end)",
        "inject",
    ),
    (
        "intersperse end",
        lambda s: s.intersperse(",", end=None),
        ValueError,
        "intersperse(inject, start, end)",
        "end",
    ),
    ("fold", lambda s: s.fold(0, 0), TypeError, "fold(zero, f)", "f"),
    ("reduce", lambda s: s.reduce(1), TypeError, "reduce(f)", "f"),
    ("take", lambda s: s.take("3"), TypeError, "take(n)", "n"),
    ("take float", lambda s: s.take(2.5), TypeError, "take(n)", "n"),
    ("take_while", lambda s: s.take_while(True), TypeError, "take_while(p, inclusive)", "p"),
    ("drop", lambda s: s.drop(ok), TypeError, "drop(n)", "n"),
    ("drop_while", lambda s: s.drop_while(0), TypeError, "drop_while(p)", "p"),
    ("grouped zero", lambda s: s.grouped(0), ValueError, "grouped(n): n must be >= 1, got 0", "n"),
    ("grouped bool", lambda s: s.grouped(True), TypeError, "grouped(n)", "n"),
    ("sliding step", lambda s: s.sliding(2, 0), ValueError, "sliding(n, step)", "step"),
    ("limit", lambda s: s.limit(None), TypeError, "limit(n)", "n"),
    (
        "limit_weighted",
        lambda s: s.limit_weighted(3, 1),
        TypeError,
        "limit_weighted(n, cost)",
        "cost",
    ),
    ("log name", lambda s: s.log(ok), TypeError, "log(name, extract, logger)", "name"),
    ("log extract", lambda s: s.log("x", 1), TypeError, "log(name, extract, logger)", "extract"),
    (
        "map_async swapped",
        lambda s: s.map_async(aok, 4),
        TypeError,
        "map_async(parallelism, f): "
        "parallelism must be a positive int, got function aok; did you swap the arguments?",
        "parallelism",
    ),
    (
        "map_async zero",
        lambda s: s.map_async(0, aok),
        ValueError,
        "map_async(parallelism, f): parallelism must be >= 1, got 0",
        "parallelism",
    ),
    ("map_async f", lambda s: s.map_async(2, 3), TypeError, "map_async(parallelism, f)", "f"),
    (
        "map_async_unordered",
        lambda s: s.map_async_unordered(aok, 2),
        TypeError,
        "map_async_unordered(parallelism, f)",
        "parallelism",
    ),
    ("scan_async", lambda s: s.scan_async(aok, 0), TypeError, "scan_async(zero, f)", "f"),
    ("fold_async", lambda s: s.fold_async(0, None), TypeError, "fold_async(zero, f)", "f"),
    ("buffer", lambda s: s.buffer("10", OS), TypeError, "buffer(size, overflow_strategy)", "size"),
    (
        "buffer zero",
        lambda s: s.buffer(0, OS),
        ValueError,
        "buffer(size, overflow_strategy)",
        "size",
    ),
    (
        "watch_termination",
        lambda s: s.watch_termination(1),
        TypeError,
        "watch_termination(combine)",
        "combine",
    ),
    ("monitor", lambda s: s.monitor("right"), TypeError, "monitor(combine)", "combine"),
    (
        "throttle elements",
        lambda s: s.throttle("10", 1.0),
        TypeError,
        "throttle(elements, per, maximum_burst, mode, cost)",
        "elements",
    ),
    (
        "throttle per",
        lambda s: s.throttle(10, "1s"),
        TypeError,
        "throttle(elements, per, maximum_burst, mode, cost)",
        "per",
    ),
    (
        "throttle per nan",
        lambda s: s.throttle(10, float("nan")),
        ValueError,
        "throttle(elements, per, maximum_burst, mode, cost)",
        "per",
    ),
    (
        "throttle burst",
        lambda s: s.throttle(10, 1.0, "5"),
        TypeError,
        "throttle(elements, per, maximum_burst, mode, cost)",
        "maximum_burst",
    ),
    (
        "throttle cost",
        lambda s: s.throttle(10, 1.0, cost=2),
        TypeError,
        "throttle(elements, per, maximum_burst, mode, cost)",
        "cost",
    ),
    (
        "grouped_within n",
        lambda s: s.grouped_within(0.5, 10),
        TypeError,
        "grouped_within(n, seconds)",
        "n",
    ),
    (
        "grouped_within seconds",
        lambda s: s.grouped_within(10, 0),
        ValueError,
        "grouped_within(n, seconds)",
        "seconds",
    ),
    (
        "delay",
        lambda s: s.delay(-1),
        ValueError,
        "delay(seconds, strategy, buffer_size)",
        "seconds",
    ),
    (
        "delay buffer_size",
        lambda s: s.delay(1, None, 0),
        ValueError,
        "delay(seconds, strategy, buffer_size)",
        "buffer_size",
    ),
    (
        "initial_delay",
        lambda s: s.initial_delay("1"),
        TypeError,
        "initial_delay(seconds)",
        "seconds",
    ),
    ("take_within", lambda s: s.take_within(0), ValueError, "take_within(seconds)", "seconds"),
    ("drop_within", lambda s: s.drop_within(None), TypeError, "drop_within(seconds)", "seconds"),
    ("idle_timeout", lambda s: s.idle_timeout(-2), ValueError, "idle_timeout(seconds)", "seconds"),
    (
        "completion_timeout",
        lambda s: s.completion_timeout("5"),
        TypeError,
        "completion_timeout(seconds)",
        "seconds",
    ),
    (
        "initial_timeout",
        lambda s: s.initial_timeout(0),
        ValueError,
        "initial_timeout(seconds)",
        "seconds",
    ),
    (
        "backpressure_timeout",
        lambda s: s.backpressure_timeout(ok),
        TypeError,
        "backpressure_timeout(seconds)",
        "seconds",
    ),
    (
        "keep_alive",
        lambda s: s.keep_alive(1.0, 0),
        TypeError,
        "keep_alive(seconds, inject)",
        "inject",
    ),
    ("conflate", lambda s: s.conflate(0), TypeError, "conflate(f)", "f"),
    (
        "conflate_with_seed",
        lambda s: s.conflate_with_seed(0, ok),
        TypeError,
        "conflate_with_seed(seed, f)",
        "seed",
    ),
    ("batch", lambda s: s.batch(ok, ok, 3), TypeError, "batch(max, seed, f)", "max"),
    (
        "batch_weighted",
        lambda s: s.batch_weighted(3, 1, ok, ok),
        TypeError,
        "batch_weighted(max, cost, seed, f)",
        "cost",
    ),
    ("expand", lambda s: s.expand([1]), TypeError, "expand(f)", "f"),
    ("recover", lambda s: s.recover(1), TypeError, "recover(f)", "f"),
    (
        "recover_with_retries",
        lambda s: s.recover_with_retries(ok, 3),
        TypeError,
        "recover_with_retries(attempts, f)",
        "attempts",
    ),
    ("map_error", lambda s: s.map_error(ValueError("x")), TypeError, "map_error(f)", "f"),
    ("flat_map_concat", lambda s: s.flat_map_concat(S), TypeError, "flat_map_concat(f)", "f"),
    (
        "flat_map_merge",
        lambda s: s.flat_map_merge(ok, 2),
        TypeError,
        "flat_map_merge(breadth, f)",
        "breadth",
    ),
    ("switch_map", lambda s: s.switch_map(1), TypeError, "switch_map(f)", "f"),
    ("prefix_and_tail", lambda s: s.prefix_and_tail("2"), TypeError, "prefix_and_tail(n)", "n"),
    (
        "group_by",
        lambda s: s.group_by(ok, 10),
        TypeError,
        "group_by(max_substreams, key)",
        "max_substreams",
    ),
    (
        "group_by key",
        lambda s: s.group_by(10, "k"),
        TypeError,
        "group_by(max_substreams, key)",
        "key",
    ),
    ("split_when", lambda s: s.split_when(1), TypeError, "split_when(p)", "p"),
    ("split_after", lambda s: s.split_after(1), TypeError, "split_after(p)", "p"),
    (
        "map_async_partitioned",
        lambda s: s.map_async_partitioned(2, 0, ok, aok),
        ValueError,
        "map_async_partitioned(parallelism, per_partition, partitioner, f)",
        "per_partition",
    ),
    ("debounce", lambda s: s.debounce(-1), ValueError, "debounce(seconds)", "seconds"),
    ("drop_repeated", lambda s: s.drop_repeated(1), TypeError, "drop_repeated(eq)", "eq"),
    (
        "also_to_mat",
        lambda s: s.also_to_mat(Sink.ignore(), 1),
        TypeError,
        "also_to_mat(sink, combine)",
        "combine",
    ),
    (
        "wire_tap_mat",
        lambda s: s.wire_tap_mat(Sink.ignore(), 1),
        TypeError,
        "wire_tap_mat(sink, combine)",
        "combine",
    ),
    (
        "divert_to",
        lambda s: s.divert_to(Sink.ignore(), 1),
        TypeError,
        "divert_to(sink, pred)",
        "pred",
    ),
    (
        "divert_to_mat",
        lambda s: s.divert_to_mat(Sink.ignore(), ok, 1),
        TypeError,
        "divert_to_mat(sink, pred, combine)",
        "combine",
    ),
    (
        "zip_latest_with",
        lambda s: s.zip_latest_with(S, 1),
        TypeError,
        "zip_latest_with(other, f)",
        "f",
    ),
    ("merge_sorted", lambda s: s.merge_sorted(S, 1), TypeError, "merge_sorted(other, key)", "key"),
    (
        "interleave",
        lambda s: s.interleave(S, 0),
        ValueError,
        "interleave(other, segment_size)",
        "segment_size",
    ),
    ("zip_mat", lambda s: s.zip_mat(S, 1), TypeError, "zip_mat(other, combine)", "combine"),
    ("zip_with", lambda s: s.zip_with(S, 1), TypeError, "zip_with(other, f)", "f"),
    ("merge_mat", lambda s: s.merge_mat(S, 1), TypeError, "merge_mat(other, combine)", "combine"),
    (
        "concat_mat",
        lambda s: s.concat_mat(S, 1),
        TypeError,
        "concat_mat(other, combine)",
        "combine",
    ),
    (
        "prepend_mat",
        lambda s: s.prepend_mat(S, 1),
        TypeError,
        "prepend_mat(other, combine)",
        "combine",
    ),
    ("via_mat", lambda s: s.via_mat(Flow(), 1), TypeError, "via_mat(flow, combine)", "combine"),
    (
        "map_materialized_value",
        lambda s: s.map_materialized_value(1),
        TypeError,
        "map_materialized_value(f)",
        "f",
    ),
    ("named", lambda s: s.named(5), TypeError, "named(name)", "name"),
]

# The same operators on Source, Flow and a SubFlow (FlowOps: one definition for all three).
HOSTS: dict[str, Callable[[], Any]] = {
    "Source": lambda: Source.single(1),
    "Flow": lambda: Flow(),
    "SubFlow": lambda: Source.single(1).group_by(4, ok),
}

OTHER: list[Case] = [
    (
        "Source.from_iterable",
        lambda: Source.from_iterable(5),
        TypeError,
        "Source.from_iterable(iterable)",
        "iterable",
    ),
    (
        "Source.single",
        lambda: Source.single(None),
        ValueError,
        "Source.single(elem): elem must not be None",
        "elem",
    ),
    ("Source.repeat", lambda: Source.repeat(None), ValueError, "Source.repeat(elem)", "elem"),
    ("Source.failed", lambda: Source.failed("boom"), TypeError, "Source.failed(exc)", "exc"),
    ("Source.unfold", lambda: Source.unfold(0, 1), TypeError, "Source.unfold(state, f)", "f"),
    (
        "Source.unfold_async",
        lambda: Source.unfold_async(0, 1),
        TypeError,
        "Source.unfold_async(state, f)",
        "f",
    ),
    (
        "Source.tick",
        lambda: Source.tick(0, 0, "t"),
        ValueError,
        "Source.tick(initial_delay, interval)",
        "interval",
    ),
    (
        "Source.tick delay",
        lambda: Source.tick("1", 1, "t"),
        TypeError,
        "Source.tick(initial_delay, interval)",
        "initial_delay",
    ),
    (
        "Source.combine",
        lambda: Source.combine(S, S, strategy=2),
        TypeError,
        "Source.combine(strategy)",
        "strategy",
    ),
    (
        "Source.queue",
        lambda: Source.queue("8"),
        TypeError,
        "Source.queue(buffer_size, overflow_strategy, max_concurrent_offers)",
        "buffer_size",
    ),
    (
        "Source.queue offers",
        lambda: Source.queue(8, None, 0),
        ValueError,
        "Source.queue(buffer_size, overflow_strategy, max_concurrent_offers)",
        "max_concurrent_offers",
    ),
    (
        "Source.to_mat",
        lambda: S.to_mat(Sink.ignore(), "both"),
        TypeError,
        "to_mat(sink, combine)",
        "combine",
    ),
    ("Source.run_foreach", lambda: S.run_foreach(1), TypeError, "run_foreach(f)", "f"),
    ("Source.run_fold", lambda: S.run_fold(ok, 0), TypeError, "run_fold(zero, f)", "f"),
    ("Source.run_reduce", lambda: S.run_reduce(0), TypeError, "run_reduce(f)", "f"),
    (
        "Source.as_source_with_context",
        lambda: S.as_source_with_context(0),
        TypeError,
        "as_source_with_context(extract_ctx)",
        "extract_ctx",
    ),
    (
        "Flow.to_mat",
        lambda: Flow().to_mat(Sink.ignore(), 1),
        TypeError,
        "to_mat(sink, combine)",
        "combine",
    ),
    (
        "Flow.join_mat",
        lambda: Flow().join_mat(Flow(), 1),
        TypeError,
        "join_mat(flow, combine)",
        "combine",
    ),
    ("Flow.from_function", lambda: Flow.from_function(1), TypeError, "Flow.from_function(f)", "f"),
    (
        "Flow.from_sink_and_source_mat",
        lambda: Flow.from_sink_and_source_mat(Sink.ignore(), S, 1),
        TypeError,
        "Flow.from_sink_and_source_mat(sink, source, combine)",
        "combine",
    ),
    (
        "Flow.as_flow_with_context",
        lambda: Flow().as_flow_with_context(1, ok),
        TypeError,
        "as_flow_with_context(collapse_context, extract_context)",
        "collapse_context",
    ),
    ("Sink.foreach", lambda: Sink.foreach(print()), TypeError, "Sink.foreach(f)", "f"),
    (
        "Sink.foreach_async",
        lambda: Sink.foreach_async(aok, 2),
        TypeError,
        "Sink.foreach_async(parallelism, f): "
        "parallelism must be a positive int, got function aok; did you swap the arguments?",
        "parallelism",
    ),
    ("Sink.fold", lambda: Sink.fold(ok, 0), TypeError, "Sink.fold(zero, f)", "f"),
    ("Sink.fold_async", lambda: Sink.fold_async(0, 0), TypeError, "Sink.fold_async(zero, f)", "f"),
    ("Sink.reduce", lambda: Sink.reduce(0), TypeError, "Sink.reduce(f)", "f"),
    ("Sink.take_last", lambda: Sink.take_last(0), ValueError, "Sink.take_last(n)", "n"),
    ("Sink.on_complete", lambda: Sink.on_complete(0), TypeError, "Sink.on_complete(cb)", "cb"),
    (
        "Sink.combine",
        lambda: Sink.combine(Sink.ignore(), Sink.ignore(), strategy=2),
        TypeError,
        "Sink.combine(strategy)",
        "strategy",
    ),
    (
        "Sink.queue",
        lambda: Sink.queue(0),
        ValueError,
        "Sink.queue(max_concurrent_pulls)",
        "max_concurrent_pulls",
    ),
    ("Sink.contramap", lambda: Sink.ignore().contramap(1), TypeError, "contramap(f)", "f"),
    (
        "SubFlow.merge_substreams_with_parallelism",
        lambda: S.group_by(2, ok).merge_substreams_with_parallelism(0),
        ValueError,
        "merge_substreams_with_parallelism(parallelism)",
        "parallelism",
    ),
    # SourceWithContext / FlowWithContext wrap the user's function: checked before wrapping
    (
        "SourceWithContext.map",
        lambda: S.as_source_with_context(ok).map(1),
        TypeError,
        "map(f)",
        "f",
    ),
    (
        "SourceWithContext.filter",
        lambda: S.as_source_with_context(ok).filter(1),
        TypeError,
        "filter(p)",
        "p",
    ),
    (
        "SourceWithContext.map_concat",
        lambda: S.as_source_with_context(ok).map_concat(1),
        TypeError,
        "map_concat(f)",
        "f",
    ),
    (
        "SourceWithContext.map_async",
        lambda: S.as_source_with_context(ok).map_async(aok, 1),
        TypeError,
        "map_async(parallelism, f)",
        "parallelism",
    ),
    (
        "SourceWithContext.map_context",
        lambda: S.as_source_with_context(ok).map_context(1),
        TypeError,
        "map_context(f)",
        "f",
    ),
    (
        "SourceWithContext.log",
        lambda: S.as_source_with_context(ok).log("x", 1),
        TypeError,
        "log(name, extract, logger)",
        "extract",
    ),
    (
        "SourceWithContext.throttle",
        lambda: S.as_source_with_context(ok).throttle(1, 1.0, cost=1),
        TypeError,
        "throttle(elements, per, maximum_burst, mode, cost)",
        "cost",
    ),
    (
        "SourceWithContext.grouped",
        lambda: S.as_source_with_context(ok).grouped(0),
        ValueError,
        "grouped(n)",
        "n",
    ),
    (
        "FlowWithContext.filter_not",
        lambda: FlowWithContext.identity().filter_not(1),
        TypeError,
        "filter_not(p)",
        "p",
    ),
    (
        "FlowWithContext.map_async_partitioned",
        lambda: FlowWithContext.identity().map_async_partitioned(1, 1, 1, aok),
        TypeError,
        "map_async_partitioned(parallelism, per_partition, partitioner, f)",
        "partitioner",
    ),
    # junction constructors
    ("Merge", lambda: Merge(0), ValueError, "Merge(n, eager_complete)", "n"),
    ("Merge type", lambda: Merge("2"), TypeError, "Merge(n, eager_complete)", "n"),
    (
        "MergePreferred",
        lambda: MergePreferred(0),
        ValueError,
        "MergePreferred(n, eager_complete)",
        "n",
    ),
    ("Concat", lambda: Concat(1.0), TypeError, "Concat(n)", "n"),
    ("ZipWith", lambda: ZipWith(3), TypeError, "ZipWith(f, n)", "f"),
    ("ZipN", lambda: ZipN(0), ValueError, "ZipN(n)", "n"),
    (
        "ZipWithN swapped",
        lambda: ZipWithN(3, sum),
        TypeError,
        "ZipWithN(f, n): f must be callable, got int 3; did you swap the arguments?",
        "f",
    ),
    ("ZipLatestWith", lambda: ZipLatestWith(ok, 1), ValueError, "ZipLatestWith(f, n)", "n"),
    (
        "Interleave",
        lambda: Interleave(2, 0),
        ValueError,
        "Interleave(n, segment_size, eager_close)",
        "segment_size",
    ),
    ("MergeSorted", lambda: MergeSorted(1), TypeError, "MergeSorted(key)", "key"),
    ("Broadcast", lambda: Broadcast("2"), TypeError, "Broadcast(n, eager_cancel)", "n"),
    (
        "Balance",
        lambda: Balance(0),
        ValueError,
        "Balance(n, wait_for_all_downstreams, eager_cancel)",
        "n",
    ),
    (
        "Partition swapped",
        lambda: Partition(ok, 2),
        TypeError,
        "Partition(n, f, eager_cancel): "
        "n must be a positive int, got function ok; did you swap the arguments?",
        "n",
    ),
    ("UnzipWith", lambda: UnzipWith(1, 2), TypeError, "UnzipWith(f, n)", "f"),
]


def _assert_names(err: pytest.ExceptionInfo[Exception], prefix: str, arg: str) -> None:
    msg = str(err.value)
    assert msg.startswith(prefix), msg
    sig = prefix.split(":")[0]
    assert f"{sig}: {arg} must " in msg, msg
    assert "got " in msg, msg


@pytest.mark.parametrize("host", list(HOSTS))
@pytest.mark.parametrize(
    ("name", "build", "exc", "prefix", "arg"), FLOW_OPS, ids=[c[0] for c in FLOW_OPS]
)
def test_flow_operator_checks_its_arguments_when_built(
    host: str, name: str, build: Callable[[Any], Any], exc: type[Exception], prefix: str, arg: str
) -> None:
    with pytest.raises(exc) as err:
        build(HOSTS[host]())
    _assert_names(err, prefix, arg)


@pytest.mark.parametrize(
    ("name", "build", "exc", "prefix", "arg"), OTHER, ids=[c[0] for c in OTHER]
)
def test_factory_and_junction_check_their_arguments_when_built(
    name: str, build: Callable[[], Any], exc: type[Exception], prefix: str, arg: str
) -> None:
    with pytest.raises(exc) as err:
        build()
    _assert_names(err, prefix, arg)


def test_good_arguments_still_build() -> None:
    """The checks accept what the operators document: ints of any sign where Akka does
    (take/drop/limit), None where optional, callables of every kind (classes, builtins,
    bound methods, partials), int, float or Fraction seconds, -1 as throttle's automatic
    burst, any iterable."""
    s = Source.from_iterable([1, 2])
    built: list[Any] = [
        Source.from_iterable(it) for it in ((x for x in "ab"), {"a": 1}, "ab", range(3), b"x")
    ]
    built += [Source.single(0), Source.repeat(False), Source.failed(ValueError("x"))]
    built.append(s.scan(0, ok).scan_async("", aok).intersperse(0, start="[", end="]"))
    built.append(
        s.take(-1).drop(0).limit(0).take_while(bool).map(str).map(functools.partial(max, 0))
    )
    built.append(s.throttle(1, 1, -1).throttle(2, 0.5, None, None, len).delay(0).debounce(0))
    built.append(s.grouped_within(2, 1).buffer(1, OS).log("x").drop_repeated().merge_sorted(s))
    sub = s.recover_with_retries(-1, ok).group_by(0, ok).prefix_and_tail(0)
    assert isinstance(sub.merge_substreams(), Source)
    built.append(s.take_within(Fraction(1, 2)).delay(0.25))
    built.append(Source.queue(0))
    assert all(isinstance(b, Source) for b in built)
    assert isinstance(Sink.foreach([].append), Sink)
    assert ZipWith().shape is not None
    assert UnzipWith().shape is not None


def test_integer_types_of_other_libraries_pass_the_checks() -> None:
    """numpy's integers are not ``int``: an integer is anything with ``__index__``."""

    class Index:
        def __index__(self) -> int:
            return 3

    check("grouped(n)", pos_int(Index()))
    with pytest.raises(TypeError, match=r"^grouped\(n\): n must be a positive int, got float 3.0$"):
        check("grouped(n)", pos_int(3.0))


# -- errors raised inside a fused chain name the operator -----------------------------------
class Bad(ValueError):
    pass


def raise_bad(x: Any) -> Any:
    raise Bad(f"bad {x}")


@pytest.mark.parametrize(
    ("build", "note"),
    [
        (lambda s: s.map(raise_bad), "raised by the function given to map (stage [map])"),
        (
            lambda s: s.map(ok).filter(raise_bad).map(ok),
            "raised by the function given to filter (stage [filter])",
        ),
        (
            lambda s: s.map(ok).via(Flow().map(raise_bad).named("parse")),
            "raised by the function given to map (stage [parse])",
        ),
        (
            lambda s: s.scan(0, lambda a, x: raise_bad(x)),
            "raised by the function given to scan (stage [scan])",
        ),
        (
            lambda s: s.drop_while(raise_bad),
            "raised by the function given to drop_while (stage [drop_while])",
        ),
    ],
)
async def test_user_exception_in_a_fused_chain_names_the_operator(
    build: Callable[[Any], Any], note: str
) -> None:
    """The user's exception keeps its type (a ValueError stays a ValueError) and gets a
    note naming the operator, since its traceback shows only generated fused code. (Fast
    paths on explicitly: without them nothing is fused and the traceback shows the
    operator's own stage.)"""
    src = Source.from_iterable([1, 2, 3])
    async with Materializer(fast_paths=True) as materializer:
        with pytest.raises(Bad, match="bad 1") as err:
            await build(src).run_with(Sink.seq(), materializer)
    assert type(err.value) is Bad
    assert err.value.__notes__ == [note]


async def test_fused_note_is_not_added_twice_to_a_reused_exception() -> None:
    shared = Bad("shared")

    def raise_shared(x: Any) -> Any:
        raise shared

    flow = Source.from_iterable([1, 2]).map(raise_shared)
    async with Materializer(fast_paths=True) as materializer:  # (fused: see above)
        for _ in range(2):
            with pytest.raises(Bad):
                await flow.run_with(Sink.seq(), materializer)
    assert shared.__notes__ == ["raised by the function given to map (stage [map])"]


async def test_resumed_exception_in_a_fused_chain_gets_no_note(materializer: Any) -> None:
    seen: list[BaseException] = []

    def decider(exc: BaseException) -> Any:
        seen.append(exc)
        return Supervision.resume

    def odd_fails(x: int) -> int:
        if x % 2:
            raise Bad(str(x))
        return x

    out = await (
        Source.from_iterable([1, 2, 3, 4])
        .map(odd_fails)
        .map(ok)
        .with_attributes(Attributes.supervision_strategy(decider))
        .run_with(Sink.seq(), materializer)
    )
    assert out == [2, 4]
    assert [getattr(e, "__notes__", None) for e in seen] == [None, None]


def missing_return(x: int) -> None:
    x * 2


@pytest.mark.parametrize(
    ("build", "operator", "port"),
    [
        (lambda s: s.map(missing_return), "[map]", "'Map.out'"),
        (lambda s: s.map(ok).map(missing_return).filter(lambda x: True), "[map]", "'Map.out'"),
        (lambda s: s.map(ok).map(missing_return).named("double"), "[double]", "'Map.out'"),
        (lambda s: s.filter(ok).scan(0, lambda a, x: None), "[scan]", "'Scan.out'"),
        # a None zero (refused by scan(), possible with the stage itself) names the scan
        (lambda s: s.via(Flow.from_graph(Scan(None, max))).map(ok), "[scan]", "'Scan.out'"),
    ],
)
async def test_none_from_a_fused_chain_names_the_operator_and_the_likely_cause(
    materializer: Any, build: Callable[[Any], Any], operator: str, port: str
) -> None:
    with pytest.raises(PortStateError) as err:
        await build(Source.from_iterable([1, 2])).run_with(Sink.seq(), materializer)
    msg = str(err.value)
    assert msg.startswith(f"{operator} {NONE_ELEMENT}"), msg
    assert "a function missing its return?" in msg
    assert f"(port {port}" in msg
    assert "Fused" not in msg


async def test_none_from_an_unfused_map_says_the_likely_cause(materializer: Any) -> None:
    no_fusing = Attributes.fast_paths(False)
    with pytest.raises(PortStateError, match=r"^\[map\] .*a function missing its return\?"):
        await (
            Source.from_iterable([1])
            .map(missing_return)
            .with_attributes(no_fusing)
            .run_with(Sink.seq(), materializer)
        )


async def test_map_5_fails_at_build_not_at_run_time() -> None:
    """The issue's example: before, ``.map(5)`` built and failed at run time with
    ``'int' object is not callable`` from ``<fused map@0>``."""
    with pytest.raises(TypeError, match=r"^map\(f\): f must be callable, got int 5$"):
        Source.from_iterable([1]).map(5)
    await asyncio.sleep(0)

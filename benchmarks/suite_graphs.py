"""Graph benchmarks: junctions against the plain loops (and peers) that compute the same.

``graph_fanout`` is ``Broadcast(4) -> 4 maps -> Merge(4)``, fused and with an async
boundary on each branch, against a plain for loop, reactivex ``publish``/``merge`` and a
task-per-branch ``asyncio.Queue(16)`` design. The other rows put one junction each
(``Zip``, ``ZipWith``, ``Unzip``, ``Partition``, ``Concat``, ``Interleave``,
``MergeSorted``) between ``Source.from_iterable`` sources and ``Sink.fold(0, add)``
against the plain loop computing the same sum (``Balance`` and ``Broadcast`` into a
``Merge(2)`` too). ``graph_group_by`` is the keyed pipeline ``group_by(8, key) -> map ->
merge_substreams()`` into the same fold. ``graph_balance_pool`` is the worker pool
``Balance(2)`` -> 2 x ``map_async(1)`` -> ``Merge(2)`` against two worker tasks sharing an
``asyncio.Queue(16)``.
Every system of a row returns the same integer, which the harness compares with the
baseline's.

The systems are defined here, next to their registration: the project's build their graph
with the Graph DSL (so the junction stage itself is measured, not a fluent shortcut).
"""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks.runner import THROUGHPUT, Benchmark, System, Target, register
from benchmarks.workloads import FOUR_MAPS, add, double

#: The names of the benchmarks this module registers, in order.
NAMES: list[str] = []

M = "benchmarks.suite_graphs:"
#: The bounded queues of the hand-written asyncio design.
QUEUE_SIZE = 16
#: ``Interleave(2, SEGMENT)``.
SEGMENT = 8
_DONE: Any = object()


def _register(bench: Benchmark) -> None:
    register(bench)
    NAMES.append(bench.name)


# --------------------------------------------------------------------------------------------
# user functions shared by every system
# --------------------------------------------------------------------------------------------


def pair_of(x: int) -> tuple[int, int]:
    """The element ``x`` of the ``unzip`` source: ``(x, 2x)``."""
    return (x, 2 * x)


def add_pair(acc: int, pair: tuple[int, int]) -> int:
    """Fold step over pairs: ``acc + a + b``."""
    return acc + pair[0] + pair[1]


def parity(x: int) -> int:
    """The ``Partition`` function: output 0 for even, 1 for odd."""
    return x & 1


# --------------------------------------------------------------------------------------------
# graph_fanout: Broadcast(4) -> 4 maps -> Merge(4)
# --------------------------------------------------------------------------------------------


def fanout_for_loop(n: int) -> int:
    """Every element through the four maps in a plain loop, summed (the baseline)."""
    f1, f2, f3, f4 = FOUR_MAPS
    acc = 0
    for x in range(n):
        acc = add(acc, f1(x))
        acc = add(acc, f2(x))
        acc = add(acc, f3(x))
        acc = add(acc, f4(x))
    return acc


def fanout_reactivex(n: int) -> int:
    """reactivex: ``publish()`` the source, four ``map`` branches, ``rx.merge``, summed
    (synchronous, on the current thread)."""
    import reactivex as rx
    from reactivex import operators as ops

    shared: Any = rx.from_iterable(range(n)).pipe(ops.publish())
    branches = [shared.pipe(ops.map(f)) for f in FOUR_MAPS]
    total = [0]

    def on_next(y: int) -> None:
        total[0] = add(total[0], y)

    rx.merge(*branches).subscribe(on_next=on_next)
    shared.connect()
    return total[0]


async def fanout_queue_tasks(n: int) -> int:
    """A task per branch: the producer puts each element into four ``asyncio.Queue(16)``,
    each branch task maps and puts into one merge queue, the consumer sums."""
    ins = [asyncio.Queue[Any](QUEUE_SIZE) for _ in FOUR_MAPS]
    merged = asyncio.Queue[Any](QUEUE_SIZE)

    async def produce() -> None:
        for x in range(n):
            for q in ins:
                await q.put(x)
        for q in ins:
            await q.put(_DONE)

    async def branch(q: asyncio.Queue[Any], f: Any) -> None:
        while True:
            x = await q.get()
            if x is _DONE:
                await merged.put(_DONE)
                return
            await merged.put(f(x))

    async def consume() -> int:
        acc = 0
        running = len(FOUR_MAPS)
        while running:
            y = await merged.get()
            if y is _DONE:
                running -= 1
            else:
                acc = add(acc, y)
        return acc

    tasks = [asyncio.ensure_future(branch(q, f)) for q, f in zip(ins, FOUR_MAPS, strict=True)]
    result, *_ = await asyncio.gather(consume(), produce(), *tasks)
    total: int = result
    return total


async def _fanout(n: int, boundaries: bool) -> int:
    from reactive import Broadcast, ClosedShape, Flow, GraphDSL, Merge, RunnableGraph, Sink, Source

    def blueprint(b: Any, sink: Any) -> Any:
        src = b.add(Source.from_iterable(range(n)))
        bcast = b.add(Broadcast(len(FOUR_MAPS)))
        merge = b.add(Merge(len(FOUR_MAPS)))
        src.out >> bcast.in_
        for i, f in enumerate(FOUR_MAPS):
            branch = Flow().map(f)
            if boundaries:
                branch = branch.async_boundary()
            bcast.out(i) >> b.add(branch) >> merge.in_(i)
        merge.out >> sink.in_
        return ClosedShape

    graph = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.fold(0, add)))
    result: int = await graph.run()
    return result


async def fanout_fused(n: int) -> int:
    """``Broadcast(4) -> 4 x map -> Merge(4)`` folded with ``Sink.fold(0, add)``, fused."""
    return await _fanout(n, boundaries=False)


async def fanout_boundaries(n: int) -> int:
    """The same graph with an ``async_boundary()`` after each of the four maps."""
    return await _fanout(n, boundaries=True)


_register(
    Benchmark(
        name="graph_fanout",
        title="Fan-out vs peers: Broadcast(4) -> 4 maps -> Merge(4)",
        description=(
            "Each input element is broadcast to four maps (inc, double, dec, triple) whose "
            "outputs are merged and summed with `Sink.fold(0, add)`; throughput counts input "
            "elements (each yields four outputs). Peers: reactivex `publish()` + four `map` + "
            "`rx.merge` (synchronous), and a task per branch joined by `asyncio.Queue(16)`s."
        ),
        systems=(
            System("for loop", M + "fanout_for_loop", "baseline"),
            System("reactivex publish/merge", M + "fanout_reactivex", "peer"),
            System("task per branch + asyncio.Queue(16)", M + "fanout_queue_tasks", "peer"),
            System("project (fused)", M + "fanout_fused", "project"),
            System("project (async boundaries)", M + "fanout_boundaries", "project"),
        ),
        baseline="for loop",
        size=300_000,
        quick_size=2_000,
        metrics=(THROUGHPUT,),
        targets=(
            Target("project (fused)", "throughput", ">= 0.5x the for loop", min_ratio=0.5),
            Target(
                "project (async boundaries)", "throughput", ">= 0.2x the for loop", min_ratio=0.2
            ),
        ),
    )
)


# --------------------------------------------------------------------------------------------
# one junction each vs the plain loop
# --------------------------------------------------------------------------------------------


async def _run_graph(blueprint: Any) -> int:
    from reactive import GraphDSL, RunnableGraph, Sink

    graph = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.fold(0, add)))
    result: int = await graph.run()
    return result


async def _into_merge(junction: Any, source: Any) -> int:
    """``source`` -> ``junction`` (two outputs) -> ``Merge(2)``, summed."""
    from reactive import ClosedShape, Merge

    def blueprint(b: Any, sink: Any) -> Any:
        j = b.add(junction)
        m = b.add(Merge(2))
        b.add(source).out >> j.in_
        j.outlets[0] >> m.in_(0)
        j.outlets[1] >> m.in_(1)
        m.out >> sink.in_
        return ClosedShape

    return await _run_graph(blueprint)


def zip_loop(n: int) -> int:
    """``sum(a + b for (a, b) in zip(range(n), range(n)))`` as a plain loop."""
    acc = 0
    for pair in zip(range(n), range(n), strict=True):
        acc = add_pair(acc, pair)
    return acc


async def zip_project(n: int) -> int:
    """Two sources into ``Zip()``, pairs folded with ``add_pair``."""
    from reactive import ClosedShape, Flow, Source, Zip

    def blueprint(b: Any, sink: Any) -> Any:
        z = b.add(Zip())
        b.add(Source.from_iterable(range(n))).out >> z.in0
        b.add(Source.from_iterable(range(n))).out >> z.in1
        z.out >> b.add(Flow().map(sum)) >> sink.in_
        return ClosedShape

    return await _run_graph(blueprint)


def zip_with_loop(n: int) -> int:
    """``add(a, b)`` over ``zip(range(n), range(n))``, summed, as a plain loop."""
    acc = 0
    for a, b in zip(range(n), range(n), strict=True):
        acc = add(acc, add(a, b))
    return acc


async def zip_with_project(n: int) -> int:
    """Two sources into ``ZipWith(add)``, summed."""
    from reactive import ClosedShape, Source, ZipWith

    def blueprint(b: Any, sink: Any) -> Any:
        z = b.add(ZipWith(add))
        b.add(Source.from_iterable(range(n))).out >> z.in0
        b.add(Source.from_iterable(range(n))).out >> z.in1
        z.out >> sink.in_
        return ClosedShape

    return await _run_graph(blueprint)


def unzip_loop(n: int) -> int:
    """Both halves of ``(x, 2x)`` summed, as a plain loop."""
    acc = 0
    for x in range(n):
        a, b = pair_of(x)
        acc = add(acc, a)
        acc = add(acc, b)
    return acc


async def unzip_project(n: int) -> int:
    """``(x, 2x)`` into ``Unzip()``, both outputs into ``Merge(2)``, summed."""
    from reactive import Source, Unzip

    return await _into_merge(Unzip(), Source.from_iterable(range(n)).map(pair_of))


def partition_loop(n: int) -> int:
    """Evens and odds summed apart, then added, as a plain loop."""
    sums = [0, 0]
    for x in range(n):
        i = parity(x)
        sums[i] = add(sums[i], x)
    return sums[0] + sums[1]


async def partition_project(n: int) -> int:
    """``Partition(2, parity)``, both outputs into ``Merge(2)``, summed."""
    from reactive import Partition, Source

    return await _into_merge(Partition(2, parity), Source.from_iterable(range(n)))


def dead_letter(x: int) -> int:
    """The ``partition_dead_letters`` function: one element in 100 to output 1."""
    return 1 if x % 100 == 0 else 0


def partition_dead_letters_loop(n: int) -> int:
    """The elements split by ``dead_letter`` and summed apart, then added, as a plain loop."""
    sums = [0, 0]
    for x in range(n):
        i = dead_letter(x)
        sums[i] = add(sums[i], x)
    return sums[0] + sums[1]


async def partition_dead_letters_project(n: int) -> int:
    """``Partition(2, dead_letter)``, both outputs into ``Merge(2)``, summed."""
    from reactive import Partition, Source

    return await _into_merge(Partition(2, dead_letter), Source.from_iterable(range(n)))


def concat_loop(n: int) -> int:
    """``range(n // 2)`` then ``range(n // 2, n)`` summed, as a plain loop."""
    acc = 0
    for part in (range(n // 2), range(n // 2, n)):
        for x in part:
            acc = add(acc, x)
    return acc


async def concat_project(n: int) -> int:
    """``Concat(2)`` of ``range(n // 2)`` and ``range(n // 2, n)``, summed."""
    from reactive import ClosedShape, Concat, Source

    def blueprint(b: Any, sink: Any) -> Any:
        c = b.add(Concat(2))
        b.add(Source.from_iterable(range(n // 2))).out >> c.in_(0)
        b.add(Source.from_iterable(range(n // 2, n))).out >> c.in_(1)
        c.out >> sink.in_
        return ClosedShape

    return await _run_graph(blueprint)


def interleave_loop(n: int) -> int:
    """Segments of ``SEGMENT`` from two halves in turn, summed, as a plain loop."""
    a, b = range(n // 2), range(n // 2, n)
    acc = 0
    for start in range(0, max(len(a), len(b)), SEGMENT):
        for x in a[start : start + SEGMENT]:
            acc = add(acc, x)
        for x in b[start : start + SEGMENT]:
            acc = add(acc, x)
    return acc


async def interleave_project(n: int) -> int:
    """``Interleave(2, SEGMENT)`` of the two halves of ``range(n)``, summed."""
    from reactive import ClosedShape, Interleave, Source

    def blueprint(b: Any, sink: Any) -> Any:
        i = b.add(Interleave(2, SEGMENT))
        b.add(Source.from_iterable(range(n // 2))).out >> i.in_(0)
        b.add(Source.from_iterable(range(n // 2, n))).out >> i.in_(1)
        i.out >> sink.in_
        return ClosedShape

    return await _run_graph(blueprint)


def merge_sorted_loop(n: int) -> int:
    """A two-pointer merge of the evens and odds below ``n``, summed, as a plain loop."""
    a, b = range(0, n, 2), range(1, n, 2)
    i = j = 0
    la, lb = len(a), len(b)
    acc = 0
    while i < la and j < lb:
        x, y = a[i], b[j]
        if y < x:
            acc = add(acc, y)
            j += 1
        else:
            acc = add(acc, x)
            i += 1
    for x in a[i:]:
        acc = add(acc, x)
    for y in b[j:]:
        acc = add(acc, y)
    return acc


async def merge_sorted_project(n: int) -> int:
    """``MergeSorted()`` of the evens and odds below ``n``, summed."""
    from reactive import ClosedShape, MergeSorted, Source

    def blueprint(b: Any, sink: Any) -> Any:
        m = b.add(MergeSorted())
        b.add(Source.from_iterable(range(0, n, 2))).out >> m.in0
        b.add(Source.from_iterable(range(1, n, 2))).out >> m.in1
        m.out >> sink.in_
        return ClosedShape

    return await _run_graph(blueprint)


def balance_loop(n: int) -> int:
    """Every element summed, as a plain loop (Balance hands each to one output once)."""
    acc = 0
    for x in range(n):
        acc = add(acc, x)
    return acc


async def balance_project(n: int) -> int:
    """``Balance(2)``, both outputs into ``Merge(2)``, summed."""
    from reactive import Balance, Source

    return await _into_merge(Balance(2), Source.from_iterable(range(n)))


def broadcast_loop(n: int) -> int:
    """Every element summed twice, as a plain loop."""
    acc = 0
    for x in range(n):
        acc = add(acc, x)
        acc = add(acc, x)
    return acc


async def broadcast_project(n: int) -> int:
    """``Broadcast(2)``, both outputs into ``Merge(2)``, summed."""
    from reactive import Broadcast, Source

    return await _into_merge(Broadcast(2), Source.from_iterable(range(n)))


_JUNCTIONS = (
    ("zip", "Zip()", "two sources of range(n) zipped; pairs summed (a `map(sum)` after)"),
    ("zip_with", "ZipWith(add)", "two sources of range(n) combined with `add`, summed"),
    ("unzip", "Unzip()", "(x, 2x) unzipped, both outputs into `Merge(2)`, summed"),
    ("partition", "Partition(2, parity)", "range(n) by parity, both outputs into `Merge(2)`"),
    (
        "partition_dead_letters",
        "Partition(2, dead_letter)",
        "range(n), one element in 100 to output 1 (a dead-letter split), both outputs "
        "into `Merge(2)`",
    ),
    ("concat", "Concat(2)", "range(n // 2) then range(n // 2, n), summed"),
    (
        "interleave",
        f"Interleave(2, {SEGMENT})",
        f"the two halves of range(n) in segments of {SEGMENT}, summed",
    ),
    ("merge_sorted", "MergeSorted()", "the evens and the odds below n merged in order, summed"),
    ("balance", "Balance(2)", "range(n) balanced over two outputs into `Merge(2)`, summed"),
    (
        "broadcast",
        "Broadcast(2)",
        "range(n) broadcast to two outputs into `Merge(2)`, summed (each element twice)",
    ),
)

for _name, _junction, _what in _JUNCTIONS:
    _register(
        Benchmark(
            name=f"graph_{_name}",
            title=f"Junction: {_junction} vs a plain loop",
            description=(
                f"Graph DSL: {_what}, with `Sink.fold(0, add)`; against the plain Python loop "
                "computing the same sum (throughput counts the n elements)."
            ),
            systems=(
                System("plain loop", M + f"{_name}_loop", "baseline"),
                System(f"project {_junction}", M + f"{_name}_project", "project"),
            ),
            baseline="plain loop",
            size=300_000,
            quick_size=2_000,
            metrics=(THROUGHPUT,),
            targets=(
                Target(
                    f"project {_junction}",
                    "throughput",
                    ">= 0.25x the plain loop",
                    min_ratio=0.25,
                ),
            ),
        )
    )


# --------------------------------------------------------------------------------------------
# graph_group_by: group_by(8, key) -> map -> merge_substreams() vs the plain loop
# --------------------------------------------------------------------------------------------

#: ``group_by(GROUPS, key8)``: the number of keys (and of substreams).
GROUPS = 8


def key8(x: int) -> int:
    """The ``group_by`` key function: ``x % 8``."""
    return x % GROUPS


def group_by_loop(n: int) -> int:
    """Each element keyed, mapped and summed per key, the sums added, as a plain loop."""
    sums = [0] * GROUPS
    for x in range(n):
        k = key8(x)
        sums[k] = add(sums[k], double(x))
    return sum(sums)


async def group_by_project(n: int) -> int:
    """``group_by(8, key8).map(double).merge_substreams()`` into ``Sink.fold(0, add)``."""
    from reactive import Sink, Source

    keyed = Source.from_iterable(range(n)).group_by(GROUPS, key8).map(double)
    result: int = await keyed.merge_substreams().run_with(Sink.fold(0, add))
    return result


_register(
    Benchmark(
        name="graph_group_by",
        title="Keyed: group_by(8, key) -> map -> merge_substreams() vs a plain loop",
        description=(
            "`Source.from_iterable(range(n)).group_by(8, x % 8).map(double).merge_substreams()` "
            "into `Sink.fold(0, add)`; against the plain Python loop doing the same key, map "
            "and fold per key (throughput counts the n elements)."
        ),
        systems=(
            System("plain loop", M + "group_by_loop", "baseline"),
            System("project group_by(8)", M + "group_by_project", "project"),
        ),
        baseline="plain loop",
        size=300_000,
        quick_size=2_000,
        metrics=(THROUGHPUT,),
        targets=(
            Target(
                "project group_by(8)",
                "throughput",
                ">= 0.25x the plain loop",
                min_ratio=0.25,
            ),
        ),
    )
)


# --------------------------------------------------------------------------------------------
# graph_balance_pool: Balance(2) -> 2 x map_async(1) -> Merge(2) vs two workers and a queue
# --------------------------------------------------------------------------------------------

_register(
    Benchmark(
        name="graph_balance_pool",
        title="Worker pool: Balance(2) -> 2 x map_async(1) -> Merge(2) vs 2 worker tasks + Queue",
        description=(
            "`async def f(x): await asyncio.sleep(0); return x` over two workers, summed: the "
            "`Balance(2)` -> 2 x `map_async(1, f)` -> `Merge(2)` graph (the systems of the "
            "`balance` row) against its hand-written equivalent, two worker tasks taking from "
            "one `asyncio.Queue(16)`. `map_async` runs its calls on long-lived worker tasks "
            "(no task per call); each result is offered to Merge, which hands it straight to "
            "`Sink.fold` and answers the fold's pull at once, and the worker takes its next "
            "element from the source through Balance in one call: what separates the graph "
            "from the hand-written pool is that bookkeeping per element and an island run per "
            "result (the worker's result signals the island). The two "
            "'bare pool' systems are the protocol with nothing else (benchmarks/pool_ceiling.py): "
            "queued, every port action an event in one FIFO (bare handlers, no checks); direct, "
            "two workers taking from a shared iterator and adding their results (the shortcuts "
            "the fast paths take, with no runtime around them)."
        ),
        systems=(
            System(
                "2 worker tasks + asyncio.Queue(16)",
                "benchmarks.baselines:balance_worker_tasks",
                "baseline",
            ),
            System("project Balance(2) pool", "benchmarks.project:balance_pool", "project"),
            System(
                "bare pool, queued handlers (ceiling)",
                "benchmarks.pool_ceiling:bare_pool_queued",
                "limit",
            ),
            System(
                "bare pool, direct (2 workers, shared iterator)",
                "benchmarks.pool_ceiling:bare_pool_direct",
                "limit",
            ),
        ),
        baseline="2 worker tasks + asyncio.Queue(16)",
        size=50_000,
        quick_size=1_000,
        metrics=(THROUGHPUT,),
        targets=(
            Target(
                "project Balance(2) pool",
                "throughput",
                ">= 1.0x two worker tasks + asyncio.Queue(16)",
                min_ratio=1.0,
            ),
        ),
    )
)

"""Operator benchmarks: ``throttle`` accuracy, ``grouped_within`` and ``flat_map_merge``
throughput against the asyncio designs people write by hand.

Already covered by :mod:`benchmarks.suite` (so not repeated here): ``map_async(8)``
against the naive tasks + semaphore design (``map_async``), ``Broadcast(4) -> 4 x map ->
Merge(4)`` fused and with async boundaries (``fanout``), and a ``Balance(2)`` pool of
``map_async`` stages against one ``map_async(2)`` (``balance``).
"""

from __future__ import annotations

from benchmarks.ops_workloads import GROUP_SIZE, INNER_SIZE, MERGE_BREADTH, RATE, RATE_SKIP
from benchmarks.runner import THROUGHPUT, Benchmark, Metric, System, Target, register

#: The names of the benchmarks this module registers, in order.
NAMES: list[str] = []

B = "benchmarks.baselines_ops:"
P = "benchmarks.project_ops:"

#: ``|achieved / asked - 1|`` in percent.
RATE_ERROR = Metric("rate_error", "%", "rate error vs asked", higher_is_better=False)
#: Elements per second at the sink after the initial burst.
ACHIEVED_RATE = Metric(
    "achieved_rate", "el/s", f"achieved rate (asked {RATE:,} el/s)", higher_is_better=True
)


def _register(bench: Benchmark) -> None:
    register(bench)
    NAMES.append(bench.name)


_register(
    Benchmark(
        name="throttle_accuracy",
        title=f"throttle({RATE:,}, 1 s) rate accuracy over real time",
        description=(
            f"`from_iterable(range(n)).throttle({RATE}, 1.0)` into a sink that records each "
            f"element's arrival time (`time.perf_counter`), n = {RATE:,} x seconds (5 s; "
            f"quick: 1 s) on the real clock. Achieved rate = elements / seconds from element "
            f"n x {RATE_SKIP:g} to the last (the elements before hold the throttle's initial "
            "burst: its bucket starts full with max(1, rate x 100 ms) tokens, as Akka's); "
            "error = |achieved / asked - 1|. Baseline: an asyncio loop sleeping until element "
            "i's deadline t0 + i / rate."
        ),
        systems=(
            System("asyncio deadline loop", B + "throttle_deadline_loop", "baseline"),
            System("asyncio.sleep(1/rate) per element (naive)", B + "throttle_sleep_each", "peer"),
            System("aiostream spaceout(1/rate)", B + "throttle_aiostream", "peer"),
            System("project throttle", P + "throttle", "project"),
        ),
        baseline="asyncio deadline loop",
        size=RATE * 5,
        quick_size=RATE,
        metrics=(RATE_ERROR, ACHIEVED_RATE),
        targets=(
            Target("project throttle", "rate_error", "within 2% of the asked rate", max_value=2.0),
        ),
        timeout=120.0,
        max_rounds=3,  # real time (5 s per system) and an absolute target
    )
)

_register(
    Benchmark(
        name="grouped_within",
        title=f"grouped_within({GROUP_SIZE}, 10 ms) throughput",
        description=(
            f"`from_iterable(range(n)).grouped_within({GROUP_SIZE}, 0.01)` folded into "
            "(elements, sum). Baseline: the strongest asyncio design, one task reading the "
            "iterable and closing a batch at 100 elements or after 10 ms (`loop.time()` per "
            "element). Also: the plain loop (the limit), list slices, and the naive designs "
            "(a producer task feeding an `asyncio.Queue(16)`, batches filled under "
            "`asyncio.wait_for`), which the second ratio column compares with."
        ),
        systems=(
            System("asyncio single task", B + "grouped_single_task", "baseline"),
            System("asyncio wait_for per batch (naive)", B + "grouped_wait_for_batch", "peer"),
            System("asyncio wait_for per element", B + "grouped_wait_for_element", "peer"),
            System("plain loop", B + "grouped_plain_loop", "limit"),
            System("list slices of 100", B + "grouped_for_loop", "limit"),
            System("project grouped_within", P + "grouped_within", "project"),
            System("project grouped(100) (no timer, reference)", P + "grouped", "project"),
        ),
        baseline="asyncio single task",
        references=("asyncio wait_for per batch (naive)",),
        size=200_000,
        quick_size=5_000,
        metrics=(THROUGHPUT,),
        targets=(
            Target(
                "project grouped_within",
                "throughput",
                ">= 0.5x the single-task asyncio design",
                min_ratio=0.5,
            ),
        ),
    )
)

_register(
    Benchmark(
        name="flat_map_merge",
        title=f"flat_map_merge({MERGE_BREADTH}, i -> {INNER_SIZE:,} elements)",
        description=(
            f"`from_iterable(range(n // {INNER_SIZE})).flat_map_merge({MERGE_BREADTH}, i -> "
            f"Source.from_iterable(range(i * {INNER_SIZE}, (i + 1) * {INNER_SIZE})))` summed "
            f"with `Sink.fold(0, add)` (n elements in all, from n / {INNER_SIZE} inner sources). "
            f"Baseline: the strongest asyncio design, one task merging up to {MERGE_BREADTH} "
            "inner iterators round-robin, 16 elements a turn. Also: a nested for loop (the "
            f"limit), aiostream, and {MERGE_BREADTH} asyncio tasks draining inner iterables "
            "into one `asyncio.Queue(16)` (the naive design, the second ratio column). "
            "`project` reads an inner `Source.from_iterable` of a range, list or tuple (or a "
            "`Source.single`) directly, with no nested graph per inner source; "
            "`project (list inners)` is the same over inner lists (built before the run); "
            "`project (inners materialized)` turns that off: every inner source a nested "
            "graph, what any other inner source costs (one behind a `map`, say)."
        ),
        systems=(
            System("asyncio single task", B + "flat_map_single_task", "baseline"),
            System(
                f"{MERGE_BREADTH} asyncio tasks + Queue(16)", B + "flat_map_queue_tasks", "peer"
            ),
            System("nested for loop", B + "flat_map_for_loop", "limit"),
            System(
                f"aiostream flatmap(task_limit={MERGE_BREADTH})", B + "flat_map_aiostream", "peer"
            ),
            System("project", P + "flat_map_merge", "project"),
            System("project (list inners)", P + "flat_map_merge_list_inners", "project"),
            System("project (inners materialized)", P + "flat_map_merge_materialized", "project"),
        ),
        baseline="asyncio single task",
        references=(f"{MERGE_BREADTH} asyncio tasks + Queue(16)",),
        size=200_000,
        quick_size=20_000,
        metrics=(THROUGHPUT,),
        setup=P + "list_inners",
        targets=(
            Target(
                "project", "throughput", ">= 0.5x the single-task asyncio design", min_ratio=0.5
            ),
        ),
    )
)

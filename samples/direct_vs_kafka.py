"""Direct or through Kafka? The same scoring pipeline wired both ways, measured in one run.

``python samples/direct_vs_kafka.py`` (``--quick`` for a small run) runs, one after the
other:

- **direct**: records ``Source`` -> throttle(rate) -> scoring flow -> scorer work -> sink,
  one fused in-process stream: back-pressure reaches the producer;
- **kafka**: the data loader writes to a data topic at the same rate, the scoring service
  (:mod:`samples.model_serving.service`) consumes it, scores with the same stage and
  writes to the scored topic, committing offsets; the topic decouples the two sides.

In both the scorer is given a simulated cost per record (``SimulatedWork``) that allows
about three times the offered rate. For a while in the middle it is made ten times
slower (below the offered rate). What to expect: **direct**, the producer slows down to
the scorer's pace (nothing queues, latency stays low, but records are produced late);
**kafka**, the producer keeps its rate, the consumer lag grows during the slow phase and
drains afterwards (records wait in the topic, so their latency grows).

The default rate is modest on purpose: loader, consumer, scorer, producer and committer
all share one Python event loop here, and at about 1000 records/s offered the Kafka side
has no CPU left to drain its lag while the loader still runs (``--rate`` to see it).

Prints a table (throughput, end-to-end latency p50/p99, producer rate during the slow
phase, maximum backlog, time to drain) and draws a plot (throughput, latency and backlog
over time) to ``direct_vs_kafka.png`` in the temporary directory (``--png PATH`` to
choose; ``--update-readme-figure`` redraws the README's figure,
``benchmarks/results/direct_vs_kafka.png``, which is committed).
End-to-end latency is measured in this process with a monotonic clock: from the moment
a record is handed to the pipeline (direct) or to the Kafka producer (kafka) until its
scored result leaves the scorer.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reactive import Flow, Keep, KillSwitches, Sink, Source
from samples.model_serving.loader import data_loader, loader_records
from samples.model_serving.models import example_linear_model
from samples.model_serving.pipeline import scoring_flow
from samples.model_serving.publisher import model_publisher
from samples.model_serving.service import ServiceConfig, Topics, scoring_service
from samples.model_serving.stats import percentile

if TYPE_CHECKING:
    from collections.abc import Sequence

    from samples.model_serving.records import DataRecord, ScoredRecord

__all__ = [
    "README_PNG",
    "Measurement",
    "Plan",
    "SimulatedWork",
    "main",
    "parse_args",
    "run_comparison",
    "scratch_png",
]

README_PNG = Path(__file__).resolve().parent.parent / "benchmarks/results/direct_vs_kafka.png"
"""The README's figure (committed): drawn only with ``--update-readme-figure``."""


def scratch_png() -> Path:
    """Where the plot goes by default: ``direct_vs_kafka.png`` in the temporary directory."""
    return Path(tempfile.gettempdir()) / "direct_vs_kafka.png"


@dataclass(frozen=True)
class Plan:
    """Rate, timing of the slow phase and the scorer's capacity."""

    rate: int = 600
    """Records offered per second."""
    seconds: float = 12.0
    """How long records are offered."""
    slow_from: float = 3.0
    slow_until: float = 6.0
    headroom: float = 3.0
    """Scorer capacity as a multiple of ``rate`` (outside the slow phase)."""
    slowdown: float = 10.0
    """How much slower the scorer is during the slow phase."""
    sample_every: float = 0.25

    @property
    def normal_cost(self) -> float:
        """Seconds of simulated work per record, normally."""
        return 1.0 / (self.rate * self.headroom)


QUICK = Plan(rate=600, seconds=3.0, slow_from=1.0, slow_until=2.0, sample_every=0.2)
FULL = Plan()


class SimulatedWork:
    """The scorer's simulated per-record cost, changeable while it runs.

    Works like a single server: each record occupies it for ``cost`` seconds; the stage
    awaits only when the accumulated work is ahead of the clock by more than 2 ms, so
    the overhead of sleeping stays small while the capacity holds at ``1 / cost``.
    """

    def __init__(self, cost: float) -> None:
        self.cost = cost
        self._free_at = 0.0

    async def __call__(self, pair: Any) -> Any:
        """Occupy the server for one record, then return ``pair`` unchanged."""
        now = time.monotonic()
        self._free_at = max(self._free_at, now) + self.cost
        ahead = self._free_at - now
        if ahead > 0.002:
            await asyncio.sleep(ahead)
        return pair

    def flow(self) -> Flow[Any, Any, Any]:
        """This work as a ``Flow`` (``map_async(1, ...)``)."""
        return Flow().map_async(1, self)


@dataclass
class Sample:
    """One point of the time series."""

    t: float
    produced_rate: float
    scored_rate: float
    latency_p50_ms: float | None
    backlog: int


@dataclass
class Measurement:
    """What one pipeline did."""

    name: str
    sent_at: dict[Any, float] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    produced: int = 0
    scored: int = 0
    start: float = 0.0
    last_scored_at: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    produced_during_slow: int = 0
    drain_seconds: float | None = None
    _window: list[float] = field(default_factory=list)

    def on_send(self, rec: DataRecord) -> None:
        """A record was handed to the pipeline."""
        self.sent_at[rec.id] = time.monotonic()
        self.produced += 1

    def on_scored(self, scored: ScoredRecord) -> None:
        """A scored result left the scorer."""
        now = time.monotonic()
        t0 = self.sent_at.pop(scored.id, None)
        if t0 is not None:
            ms = (now - t0) * 1000.0
            self.latencies_ms.append(ms)
            self._window.append(ms)
        self.scored += 1
        self.last_scored_at = now

    @property
    def backlog(self) -> int:
        """Records handed to the pipeline and not scored yet."""
        return self.produced - self.scored

    @property
    def throughput(self) -> float:
        """Records scored per second, from the start to the last one."""
        span = self.last_scored_at - self.start
        return self.scored / span if span > 0 else 0.0

    def p(self, q: float) -> float | None:
        """Percentile ``q`` of the end-to-end latencies (ms)."""
        return percentile(sorted(self.latencies_ms), q) if self.latencies_ms else None

    async def sample(self, plan: Plan, until: asyncio.Event, work: SimulatedWork) -> None:
        """Take a sample every ``plan.sample_every`` s and drive the slow phase."""
        last_p, last_s, last_t = 0, 0, self.start
        was_slow = False
        slow_end: float | None = None
        while not until.is_set():
            await asyncio.sleep(plan.sample_every)
            now = time.monotonic()
            t = now - self.start
            slow = plan.slow_from <= t < plan.slow_until
            work.cost = plan.normal_cost * (plan.slowdown if slow else 1.0)
            if was_slow and not slow:
                slow_end = t
            was_slow = slow
            dt = now - last_t
            window, self._window = self._window, []
            self.samples.append(
                Sample(
                    t,
                    (self.produced - last_p) / dt,
                    (self.scored - last_s) / dt,
                    percentile(sorted(window), 50.0) if window else None,
                    self.backlog,
                )
            )
            if slow:
                self.produced_during_slow += self.produced - last_p
            if (
                slow_end is not None
                and self.drain_seconds is None
                and self.backlog <= max(10, plan.rate // 20)
            ):
                self.drain_seconds = t - slow_end
            last_p, last_s, last_t = self.produced, self.scored, now


async def run_direct(plan: Plan) -> Measurement:
    """The direct pipeline: everything in one fused stream."""
    m = Measurement("direct")
    work = SimulatedWork(plan.normal_cost)

    def emit(rec: DataRecord) -> DataRecord:
        m.on_send(rec)
        return rec

    def scored(pair: tuple[ScoredRecord | None, Any]) -> None:
        if pair[0] is not None:
            m.on_scored(pair[0])

    graph = (
        Source.from_iterable(loader_records(seed=1))
        .via_mat(KillSwitches.single(), Keep.right)
        .throttle(plan.rate, 1.0, maximum_burst=max(1, plan.rate // 10))
        .map(emit)
        .via(scoring_flow([example_linear_model(1)]))
        .via(work.flow())
        .to_mat(Sink.foreach(scored), Keep.both)
    )
    m.start = time.monotonic()
    switch, done = graph.run()
    stop_sampling = asyncio.Event()
    sampler = asyncio.ensure_future(m.sample(plan, stop_sampling, work))
    await asyncio.sleep(plan.seconds)
    switch.shutdown()
    await done
    await asyncio.sleep(plan.sample_every)  # one more sample after the end
    stop_sampling.set()
    await sampler
    return m


async def run_kafka(plan: Plan, servers: str) -> Measurement:
    """The Kafka pipeline: loader -> data topic -> scoring service -> scored topic."""
    from connectors.kafka.testkit import create_topic, unique_topic_name

    m = Measurement("kafka")
    work = SimulatedWork(plan.normal_cost)
    suffix = unique_topic_name("")
    topics = Topics(
        data=f"dvk-data{suffix}",
        models=f"dvk-models{suffix}",
        scored=f"dvk-scored{suffix}",
        dead_letters=f"dvk-dlq{suffix}",
    )
    for name in topics.all():
        await create_topic(servers, name, 1)
    await model_publisher(servers, topics.models, [(0.0, example_linear_model(1))]).run().done
    service = scoring_service(
        ServiceConfig(
            servers,
            topics,
            group_id=f"dvk-group{suffix}",
            consumer_properties={"session_timeout_ms": 1000, "heartbeat_interval_ms": 100},
            after_scoring=work.flow(),
            on_scored=m.on_scored,
        )
    ).run()
    # Wait for the group join and the model, so both pipelines start measuring ready.
    ready_by = time.monotonic() + 15.0
    while time.monotonic() < ready_by and not (
        service.state.has_model and service.control.metrics()["assigned_partitions"]
    ):
        await asyncio.sleep(0.05)
    m.start = time.monotonic()
    loader = data_loader(servers, topics.data, rate=plan.rate, seed=1, on_send=m.on_send).run()
    stop_sampling = asyncio.Event()
    sampler = asyncio.ensure_future(m.sample(plan, stop_sampling, work))
    await asyncio.sleep(plan.seconds)
    # On a heavily loaded machine the loader's producer may still be connecting: the run
    # needs at least its first record (up to 15 s more), else there is nothing to compare.
    first_by = time.monotonic() + 15.0
    while m.produced == 0 and time.monotonic() < first_by:
        await asyncio.sleep(0.05)
    await loader.stop()
    deadline = time.monotonic() + max(10.0, plan.seconds)
    while m.backlog > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(plan.sample_every)
    stop_sampling.set()
    await sampler
    await service.drain_and_shutdown()
    return m


def table(results: Sequence[Measurement], plan: Plan) -> str:
    """The comparison table, one column per pipeline."""

    def num(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    slow_span = plan.slow_until - plan.slow_from
    rows: list[tuple[str, list[str]]] = [
        ("records scored", [str(r.scored) for r in results]),
        ("throughput (records/s)", [num(r.throughput, ".0f") for r in results]),
        ("latency p50 (ms)", [num(r.p(50), ".2f") for r in results]),
        ("latency p99 (ms)", [num(r.p(99), ".2f") for r in results]),
        (
            "producer rate while slow (rec/s)",
            [num(r.produced_during_slow / slow_span, ".0f") for r in results],
        ),
        (
            "max backlog (records)",
            [str(max((s.backlog for s in r.samples), default=0)) for r in results],
        ),
        ("drain after slow phase (s)", [num(r.drain_seconds, ".2f") for r in results]),
    ]
    width = max(len(k) for k, _ in rows)
    cols = [max(10, len(r.name)) for r in results]
    head = (
        f"| {'':<{width}} | " + " | ".join(f"{r.name:>{c}}" for r, c in zip(results, cols)) + " |"
    )
    sep = "|" + "-" * (width + 2) + "|" + "|".join("-" * (c + 2) for c in cols) + "|"
    body = [
        f"| {k:<{width}} | " + " | ".join(f"{v:>{c}}" for v, c in zip(vals, cols)) + " |"
        for k, vals in rows
    ]
    note = (
        f"offered {plan.rate} records/s for {plan.seconds:g} s; scorer capacity "
        f"{plan.headroom:g}x the rate, {plan.slowdown:g}x slower from "
        f"{plan.slow_from:g} s to {plan.slow_until:g} s"
    )
    return "\n".join([note, head, sep, *body])


def plot(results: Sequence[Measurement], plan: Plan, path: Path) -> Path:
    """Draw throughput, latency and backlog over time into ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    colors = {"direct": "tab:blue", "kafka": "tab:orange"}
    for r in results:
        ts = [s.t for s in r.samples]
        c = colors.get(r.name)
        axes[0].plot(
            ts, [s.produced_rate for s in r.samples], "--", color=c, label=f"{r.name} produced"
        )
        axes[0].plot(ts, [s.scored_rate for s in r.samples], "-", color=c, label=f"{r.name} scored")
        lat = [(s.t, s.latency_p50_ms) for s in r.samples if s.latency_p50_ms is not None]
        axes[1].plot([t for t, _ in lat], [v for _, v in lat], color=c, label=r.name)
        axes[2].plot(ts, [s.backlog for s in r.samples], color=c, label=r.name)
    axes[0].set_ylabel("records/s")
    axes[0].set_title("throughput (dashed: produced, solid: scored)")
    axes[1].set_ylabel("ms")
    axes[1].set_yscale("log")
    axes[1].set_title("end-to-end latency p50")
    axes[2].set_ylabel("records")
    axes[2].set_title("backlog (produced, not yet scored; Kafka: consumer lag)")
    axes[2].set_xlabel("seconds")
    for ax in axes:
        ax.axvspan(plan.slow_from, plan.slow_until, color="grey", alpha=0.15)
        ax.legend(loc="upper right", fontsize="small")
        ax.grid(alpha=0.3)
    fig.suptitle(f"direct vs Kafka: scorer {plan.slowdown:g}x slower in the grey band")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


async def run_comparison(
    plan: Plan, *, bootstrap: str | None = None, png: Path | None = None
) -> tuple[list[Measurement], str]:
    """Run both pipelines and return the measurements and the table (drawing ``png``)."""
    from connectors.kafka.testkit import EmbeddedBroker, bootstrap_servers

    direct = await run_direct(plan)
    servers = bootstrap or bootstrap_servers()
    broker: EmbeddedBroker | None = None
    if servers is None:
        broker = EmbeddedBroker()
        await broker.astart()
        servers = broker.bootstrap_servers
    try:
        kafka = await run_kafka(plan, servers)
    finally:
        if broker is not None:
            await broker.astop()
    results = [direct, kafka]
    if png is not None:
        plot(results, plan, png)
    return results, table(results, plan)


def parse_args(argv: Sequence[str] | None = None) -> tuple[Plan, Path | None]:
    """The plan and the plot's path (None: no plot) that the command line asks for."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small, short run")
    parser.add_argument("--rate", type=int, help="records offered per second")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--png", type=Path, help=f"where to draw the plot (default: {scratch_png()})"
    )
    where.add_argument(
        "--update-readme-figure",
        action="store_true",
        help=f"draw the README's figure, {README_PNG.relative_to(README_PNG.parents[2])}",
    )
    where.add_argument("--no-png", action="store_true", help="do not draw the plot")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.rate:
        plan = Plan(
            rate=args.rate,
            seconds=plan.seconds,
            slow_from=plan.slow_from,
            slow_until=plan.slow_until,
            sample_every=plan.sample_every,
        )
    if args.no_png:
        return plan, None
    if args.update_readme_figure:
        return plan, README_PNG
    return plan, args.png or scratch_png()


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``--quick``, ``--rate``, ``--png PATH`` / ``--update-readme-figure`` /
    ``--no-png``."""
    plan, png = parse_args(argv)
    _, text = asyncio.run(run_comparison(plan, png=png))
    print(text)
    if png is not None:
        print(f"plot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

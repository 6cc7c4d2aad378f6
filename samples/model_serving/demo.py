"""The model-serving demo: ``python -m samples.model_serving.demo`` (what ``make demo`` runs).

It starts an embedded Kafka-protocol broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` is set),
creates the four topics, then runs three streams together in this process:

- the **data loader** (:mod:`.loader`): synthetic wine records at ``--rate`` records/s to
  the data topic, with a corrupt record every ``--bad-every`` records;
- the **model publisher** (:mod:`.publisher`): a linear model at once, an invalid model a
  quarter of the way in (refused; the linear model stays), and a tree ensemble halfway;
- the **scoring service** (:mod:`.service`): data and models in, scored records and dead
  letters out, offsets committed after each write.

A one-line progress display shows records/s, the model in service, end-to-end latency
p50/p99 (of the last 2,048 records) and the consumer lag. After ``--seconds`` (default 30;
``--forever`` runs until Ctrl-C) the loader stops, the service catches up and drains, and a
summary table is printed (its latency covers every record of the run). SIGINT stops
early, cleanly, at any time.

``--live`` runs the service on a materializer with metrics on and draws, once a second,
``reactive.observe``'s live view of its graph under the progress line: every stage with
its rates, the share of time it was back-pressured or starved, and the stage the counters
blame (needs ``rich``, the ``observe`` extra). Without a terminal, the last frame is
printed when the run ends.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import textwrap
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from connectors.kafka.testkit import EmbeddedBroker, bootstrap_servers, create_topic
from reactive import Materializer

from .loader import data_loader
from .publisher import demo_schedule, model_publisher
from .service import ServiceConfig, ServiceHandle, Topics, scoring_service

if TYPE_CHECKING:
    from reactive.observe.live_view import LiveView

__all__ = ["DemoSummary", "main", "run_demo"]


@dataclass
class DemoSummary:
    """What a demo run did (printed as the summary table)."""

    seconds: float = 0.0
    records_loaded: int = 0
    corrupt_loaded: int = 0
    records_scored: int = 0
    dead_letters: int = 0
    models_loaded: int = 0
    models_rejected: int = 0
    model_timeline: list[str] = field(default_factory=list)
    last_rejection: str | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    scoring_mean_us: float | None = None
    scoring_p99_us: float | None = None
    final_lag: int | None = None
    max_lag: int = 0
    interrupted: bool = False

    @property
    def throughput(self) -> float:
        """Records scored per second over the run."""
        return self.records_scored / self.seconds if self.seconds > 0 else 0.0

    def table(self) -> str:
        """The summary as an aligned two-column table."""

        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f} ms"

        def us(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f} µs"

        rows = [
            ("duration", f"{self.seconds:.1f} s" + (" (interrupted)" if self.interrupted else "")),
            ("records loaded", f"{self.records_loaded} ({self.corrupt_loaded} corrupt)"),
            ("records scored", str(self.records_scored)),
            ("dead letters", str(self.dead_letters)),
            ("throughput", f"{self.throughput:.0f} records/s"),
            ("models loaded / rejected", f"{self.models_loaded} / {self.models_rejected}"),
            ("model timeline", " -> ".join(self.model_timeline) or "-"),
            ("last rejection", self.last_rejection or "-"),
            ("latency p50 / p99", f"{ms(self.latency_p50_ms)} / {ms(self.latency_p99_ms)}"),
            ("scoring time mean / p99", f"{us(self.scoring_mean_us)} / {us(self.scoring_p99_us)}"),
            ("consumer lag max / final", f"{self.max_lag} / {self.final_lag or 0}"),
        ]
        width = max(len(k) for k, _ in rows)
        line = "+" + "-" * (width + 2) + "+" + "-" * (VALUE_WIDTH + 2) + "+"
        body = []
        for key, value in rows:  # a long value (a rejection reason) wraps, never cut
            wrapped = textwrap.wrap(value, VALUE_WIDTH, break_on_hyphens=False) or [""]
            for i, part in enumerate(wrapped):
                body.append(f"| {key if i == 0 else '':<{width}} | {part:<{VALUE_WIDTH}} |")
        return "\n".join([line, *body, line])


VALUE_WIDTH = 62
"""Width of the value column of the summary table; longer values wrap."""


class _Progress:
    """The live one-line display (a fresh line every few seconds when not a terminal)."""

    def __init__(self, out: TextIO, tty: bool, draw: bool = True) -> None:
        self.out = out
        self.tty = tty
        self.draw = draw
        self.line = ""
        self.last_print = 0.0
        self.window: deque[tuple[float, int]] = deque()

    def update(self, t: float, service: ServiceHandle, force: bool = False) -> int | None:
        now = time.monotonic()
        snap = service.state.snapshot()
        done = service.counters.scored + service.counters.dead_letters
        self.window.append((now, done))
        while len(self.window) > 2 and now - self.window[0][0] > 2.0:
            self.window.popleft()
        t0, d0 = self.window[0]
        rate = (done - d0) / (now - t0) if now > t0 else 0.0
        lag = service.lag()
        model = f"{snap.model_name} v{snap.model_version}" if snap.has_model else "(no model)"
        p50 = service.latency.percentile(50)
        p99 = service.latency.percentile(99)
        lat = "-" if p50 is None or p99 is None else f"p50 {p50:5.1f} ms p99 {p99:6.1f} ms"
        line = (
            f"[{t:5.1f}s] {rate:6.0f} rec/s | model {model:<16} | latency {lat} | "
            f"lag {lag if lag is not None else '-':>4} | scored {service.counters.scored} "
            f"dlq {service.counters.dead_letters} | models rejected {snap.models_rejected}"
        )
        self.line = line
        if not self.draw:  # the live view draws it
            return lag
        if self.tty:
            self.out.write("\r" + line + "\x1b[K")
            self.out.flush()
        elif force or now - self.last_print >= 3.0:
            self.out.write(line + "\n")
            self.out.flush()
            self.last_print = now
        return lag


class _LiveDisplay:
    """``--live``: the progress line above ``reactive.observe``'s live view of the
    service graph (rates, back-pressured and starved shares, blame), a frame a second."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console  # the observe extra; checked before the run
        from rich.live import Live

        # Off a terminal (a log, the README), wide enough for every column.
        self.console = Console(file=out, width=None if out.isatty() else 150)
        self.live = Live(console=self.console, auto_refresh=False)
        self.view: LiveView | None = None
        self.frame: Any = None
        self.last_frame = 0.0

    def start(self, mat: Materializer | None) -> None:
        from reactive.observe.live_view import LiveView

        self.view = LiveView(mat)
        self.live.start()

    def update(self, line: str, final: bool = False) -> None:
        from rich.console import Group
        from rich.text import Text

        assert self.view is not None
        now = time.monotonic()
        if self.frame is None or final or now - self.last_frame >= 1.0:
            self.frame = self.view.frame()
            self.last_frame = now
        self.live.update(Group(Text(line), self.frame), refresh=self.console.is_terminal or final)

    def stop(self) -> None:
        self.live.stop()


async def run_demo(
    seconds: float | None = 30.0,
    *,
    rate: float = 500.0,
    bad_every: int = 200,
    bootstrap: str | None = None,
    out: TextIO | None = None,
    stop: asyncio.Event | None = None,
    on_tick: Callable[[float, ServiceHandle], None] | None = None,
    live: bool = False,
) -> DemoSummary:
    """Run the demo for ``seconds`` (None: until ``stop`` is set) and return its summary.

    ``bootstrap`` is a running cluster; without it ``KAFKA_BOOTSTRAP_SERVERS`` or else an
    embedded broker started (and stopped) here. ``on_tick(elapsed_seconds, service)`` is
    called with the running service at each display update (4 times a second), e.g. to
    record the lag over time. ``live`` draws the service graph's metrics once a second
    (``reactive.observe`` live view; needs ``rich``).
    """
    out = out or sys.stdout
    stop = stop or asyncio.Event()
    broker: EmbeddedBroker | None = None
    servers = bootstrap or bootstrap_servers()
    if servers is None:
        out.write("starting the embedded Kafka-protocol broker ... ")
        out.flush()
        broker = EmbeddedBroker()
        await broker.astart()
        servers = broker.bootstrap_servers
        out.write(f"{servers}\n")
    try:
        return await _run(servers, seconds, rate, bad_every, out, stop, on_tick, live)
    finally:
        if broker is not None:
            await broker.astop()


async def _run(
    servers: str,
    seconds: float | None,
    rate: float,
    bad_every: int,
    out: TextIO,
    stop: asyncio.Event,
    on_tick: Callable[[float, ServiceHandle], None] | None = None,
    live: bool = False,
) -> DemoSummary:
    view = _LiveDisplay(out) if live else None
    mat = Materializer(name="demo", metrics=True) if view is not None else None
    try:
        return await _run_on(servers, seconds, rate, bad_every, out, stop, on_tick, mat, view)
    finally:
        if mat is not None:
            await mat.shutdown()


async def _run_on(
    servers: str,
    seconds: float | None,
    rate: float,
    bad_every: int,
    out: TextIO,
    stop: asyncio.Event,
    on_tick: Callable[[float, ServiceHandle], None] | None,
    mat: Materializer | None,
    view: _LiveDisplay | None,
) -> DemoSummary:
    run_id = uuid.uuid4().hex[:6]
    topics = Topics(
        data=f"wine-data-{run_id}",
        models=f"wine-models-{run_id}",
        scored=f"wine-scored-{run_id}",
        dead_letters=f"wine-dead-letters-{run_id}",
    )
    for name, partitions in zip(topics.all(), (3, 1, 3, 1)):
        await create_topic(servers, name, partitions)
    out.write(f"topics: {', '.join(topics.all())}\n")
    switch_after = (seconds if seconds is not None else 60.0) / 2
    summary = DemoSummary()
    timeline: list[str] = []

    service = (
        scoring_service(
            ServiceConfig(
                servers,
                topics,
                group_id=f"wine-scorer-{run_id}",
                # Short session: the broker answers a group join after about half of it.
                consumer_properties={"session_timeout_ms": 2000, "heartbeat_interval_ms": 200},
            )
        )
        .named("scoring-service")
        .run(mat)
    )
    publisher = model_publisher(servers, topics.models, demo_schedule(switch_after)).run()
    loader = data_loader(servers, topics.data, rate=rate, bad_every=bad_every).run()
    start = time.monotonic()
    tty = out.isatty()
    progress = _Progress(out, tty, draw=view is None)
    if view is not None:
        view.start(mat)
    try:
        while not stop.is_set():
            elapsed = time.monotonic() - start
            if seconds is not None and elapsed >= seconds:
                break
            snap = service.state.snapshot()
            if snap.has_model:
                label = f"{snap.model_name} v{snap.model_version}"
                if not timeline or timeline[-1] != label:
                    timeline.append(label)
            lag = progress.update(elapsed, service)
            if view is not None:
                view.update(progress.line)
            if on_tick is not None:
                on_tick(elapsed, service)
            summary.max_lag = max(summary.max_lag, lag or 0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)
        summary.interrupted = stop.is_set()
        # Stop loading, let the service catch up (bounded), then drain and shut down.
        await loader.stop()
        await publisher.stop()
        deadline = time.monotonic() + (3.0 if summary.interrupted else 10.0)
        while time.monotonic() < deadline:
            handled = service.counters.scored + service.counters.dead_letters
            if handled >= loader.stats.sent:
                break
            await asyncio.sleep(0.1)
        progress.update(time.monotonic() - start, service, force=True)
        if view is not None:
            view.update(progress.line, final=True)
        elif tty:
            out.write("\n")
        summary.final_lag = service.lag()
    finally:
        try:
            await service.drain_and_shutdown()
        finally:
            if view is not None:
                view.stop()
    summary.seconds = time.monotonic() - start
    snap = service.state.snapshot()
    summary.records_loaded = loader.stats.sent
    summary.corrupt_loaded = loader.stats.corrupt
    summary.records_scored = service.counters.scored
    summary.dead_letters = service.counters.dead_letters
    summary.models_loaded = snap.models_loaded
    summary.models_rejected = snap.models_rejected
    summary.last_rejection = snap.last_rejection_reason
    summary.model_timeline = timeline
    summary.latency_p50_ms = service.latency.whole_run.percentile(50)
    summary.latency_p99_ms = service.latency.whole_run.percentile(99)
    summary.scoring_mean_us = snap.scoring_time_mean_us
    summary.scoring_p99_us = snap.scoring_time_p99_us
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the demo, print the summary; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m samples.model_serving.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="run time (default 30)")
    parser.add_argument("--forever", action="store_true", help="run until Ctrl-C")
    parser.add_argument("--rate", type=float, default=500.0, help="records/s (default 500)")
    parser.add_argument(
        "--bad-every", type=int, default=200, help="a corrupt record every N (default 200)"
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="draw the service graph's per-stage metrics once a second (needs rich)",
    )
    args = parser.parse_args(argv)
    if args.live:
        try:
            import reactive.observe.live_view  # noqa: F401  (rich, the observe extra)
        except ModuleNotFoundError as exc:
            parser.error(str(exc))

    # Rejections are counted in the display and the summary; keep the log quiet.
    logging.getLogger("samples.model_serving").setLevel(logging.ERROR)

    async def go() -> DemoSummary:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, stop.set)
        try:
            return await run_demo(
                None if args.forever else args.seconds,
                rate=args.rate,
                bad_every=args.bad_every,
                stop=stop,
                live=args.live,
            )
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)

    summary = asyncio.run(go())
    print("\nsummary")
    print(summary.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())

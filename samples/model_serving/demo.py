"""The model-serving demo: ``python -m samples.model_serving.demo`` (what ``make demo`` runs).

It starts an embedded Kafka-protocol broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` is set),
creates the four topics, then runs three streams together in this process:

- the **data loader** (:mod:`.loader`): synthetic wine records at ``--rate`` records/s to
  the data topic, each with its data type (``red``, or ``white`` for every third id) in a
  header, and a corrupt record every ``--bad-every`` records;
- the **model publisher** (:mod:`.publisher`): models keyed by data type: the linear
  model for ``red`` at once, an invalid ``red`` model a quarter of the way in (refused;
  the linear model stays), the tree ensemble for ``white`` halfway (``white`` records are
  not scored before it);
- the **scoring service** (:mod:`.table_service`): the models topic as a global table,
  each record joined with its type's model and scored, statistics per data type in a
  RocksDB store under ``--state-dir`` (default ``.demo-state``) backed by a changelog
  topic, scored records and dead letters out, offsets committed once written; and the
  tutorial's endpoints ``GET /models``, ``GET /state``, ``GET /state/{dataType}`` on
  ``--port`` (default: a free port, printed).

The statistics survive the demo: a second ``make demo`` starts from them ("restored 2
data types") although the embedded broker starts empty each time. The demo fetches
``/models`` and ``/state`` over HTTP every ``--http-every`` seconds (a line each) and at
the end (the JSON bodies). ``--stage`` runs the two-inlet ``ModelScoringStage`` service
(:mod:`.service`, one model for all records, no store and no endpoints) instead.

A one-line progress display shows records/s, the models in service, end-to-end latency
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
import json
import logging
import signal
import sys
import tempfile
import textwrap
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from connectors.kafka.testkit import EmbeddedBroker, bootstrap_servers, create_topic
from reactive import Materializer

from .loader import data_loader, wine_colour
from .publisher import demo_schedule, model_publisher, table_demo_schedule
from .service import (
    LatencyWindow,
    ServiceConfig,
    ServiceCounters,
    ServiceHandle,
    Topics,
    scoring_service,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from reactive.observe.live_view import LiveView

    from .table_service import TableServiceHandle

__all__ = ["DEFAULT_STATE_DIR", "DemoSummary", "RunningService", "main", "run_demo"]

DEFAULT_STATE_DIR = Path(".demo-state")
"""Where ``make demo`` keeps the serving statistics between runs (``--state-dir``)."""


class RunningService(Protocol):
    """What the demo's display reads from either service (``--stage`` or the table one)."""

    latency: LatencyWindow
    counters: ServiceCounters

    def lag(self) -> int | None:
        """Consumer lag of the data topic."""
        ...

    def model_label(self) -> str:
        """The model(s) in service."""
        ...

    def models_loaded(self) -> int:
        """Models taken into service."""
        ...

    def models_rejected(self) -> int:
        """Model messages refused."""
        ...

    async def drain_and_shutdown(self) -> Any:
        """Stop consuming, finish what is in flight, close."""
        ...


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
    records_unscored: int = 0
    """Records of a data type without a valid model (committed, not scored)."""
    http_url: str | None = None
    """Where the endpoints listened (the table-based service)."""
    restored: dict[str, dict[str, Any]] | None = None
    """The statistics per data type the state dir held at start (None: ``--stage``)."""
    endpoints: dict[str, Any] = field(default_factory=dict)
    """The JSON of ``GET /models`` and ``GET /state`` fetched at the end, by path."""

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
            ("records unscored (no model)", str(self.records_unscored)),
            ("dead letters", str(self.dead_letters)),
            ("throughput", f"{self.throughput:.0f} records/s"),
            ("models loaded / rejected", f"{self.models_loaded} / {self.models_rejected}"),
            ("model timeline", " -> ".join(self.model_timeline) or "-"),
            ("last rejection", self.last_rejection or "-"),
            ("latency p50 / p99", f"{ms(self.latency_p50_ms)} / {ms(self.latency_p99_ms)}"),
            ("scoring time mean / p99", f"{us(self.scoring_mean_us)} / {us(self.scoring_p99_us)}"),
            ("consumer lag max / final", f"{self.max_lag} / {self.final_lag or 0}"),
        ]
        if self.restored is not None:
            rows.append(("statistics at start", _restored_text(self.restored)))
            state = self.endpoints.get("/state") or {}
            rows.append(("statistics at end", _usage_text(state) or "-"))
        if self.http_url is not None:
            rows.append(("HTTP endpoints", f"{self.http_url}/models /state /state/{{dataType}}"))
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


def _usage_text(stats: dict[str, Any]) -> str:
    return ", ".join(
        f"{t} {s.get('name') or '(no model)'} used {s.get('usage', 0)}"
        for t, s in sorted(stats.items())
    )


def _restored_text(stats: dict[str, Any]) -> str:
    if not stats:
        return "none (a new state dir)"
    return f"restored {len(stats)} data types: {_usage_text(stats)}"


def _models_line(body: Any) -> str:
    parts = []
    for data_type, m in sorted(body.items()):
        model = f"{m['name']} v{m['version']}" if m.get("name") else "(none valid)"
        rejected = " (latest message rejected)" if m.get("rejected") else ""
        parts.append(f"{data_type}: {model}{rejected}")
    return "GET /models  " + ("; ".join(parts) or "{}")


def _state_line(body: Any) -> str:
    parts = []
    for data_type, st in sorted(body.items()):
        if not st.get("name"):
            parts.append(f"{data_type}: no model yet, unscored {st.get('unscored')}")
            continue
        mean = st.get("duration_mean") or 0.0
        parts.append(
            f"{data_type}: {st['name']} v{st.get('version')} usage {st.get('usage')} "
            f"mean {mean * 1000:.1f} µs unscored {st.get('unscored')}"
        )
    return "GET /state   " + ("; ".join(parts) or "{}")


class _Progress:
    """The live one-line display (a fresh line every few seconds when not a terminal)."""

    def __init__(self, out: TextIO, tty: bool, draw: bool = True) -> None:
        self.out = out
        self.tty = tty
        self.draw = draw
        self.line = ""
        self.last_print = 0.0
        self.window: deque[tuple[float, int]] = deque()

    def update(self, t: float, service: RunningService, force: bool = False) -> int | None:
        now = time.monotonic()
        c = service.counters
        done = c.scored + c.dead_letters + c.passed  # handled: scored, dead letter or unscored
        self.window.append((now, done))
        while len(self.window) > 2 and now - self.window[0][0] > 2.0:
            self.window.popleft()
        t0, d0 = self.window[0]
        rate = (done - d0) / (now - t0) if now > t0 else 0.0
        lag = service.lag()
        model = service.model_label()
        p50 = service.latency.percentile(50)
        p99 = service.latency.percentile(99)
        lat = "-" if p50 is None or p99 is None else f"p50 {p50:5.1f} ms p99 {p99:6.1f} ms"
        line = (
            f"[{t:5.1f}s] {rate:6.0f} rec/s | model {model:<16} | latency {lat} | "
            f"lag {lag if lag is not None else '-':>4} | scored {c.scored} "
            + (f"unscored {c.passed} " if c.passed else "")
            + f"dlq {c.dead_letters} | models rejected {service.models_rejected()}"
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

    def print(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)

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
    on_tick: Callable[[float, RunningService], None] | None = None,
    live: bool = False,
    stage: bool = False,
    state_dir: str | Path | None = None,
    port: int = 0,
    http_every: float = 10.0,
) -> DemoSummary:
    """Run the demo for ``seconds`` (None: until ``stop`` is set) and return its summary.

    ``bootstrap`` is a running cluster; without it ``KAFKA_BOOTSTRAP_SERVERS`` or else an
    embedded broker started (and stopped) here. ``on_tick(elapsed_seconds, service)`` is
    called with the running service at each display update (4 times a second), e.g. to
    record the lag over time. ``live`` draws the service graph's metrics once a second
    (``reactive.observe`` live view; needs ``rich``).

    The table-based service keeps its statistics in ``state_dir`` (None: a temporary
    directory, removed after the run), serves its endpoints on ``port`` (0: a free one)
    and fetches ``/models`` and ``/state`` every ``http_every`` seconds. ``stage`` runs
    the ``ModelScoringStage`` service instead.
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
    options = _Options(seconds, rate, bad_every, out, stop, on_tick, stage, port, http_every)
    try:
        if state_dir is not None or stage:
            return await _run(servers, options, Path(state_dir or DEFAULT_STATE_DIR), live)
        with tempfile.TemporaryDirectory(prefix="demo-state-") as tmp:
            return await _run(servers, options, Path(tmp), live)
    finally:
        if broker is not None:
            await broker.astop()


@dataclass
class _Options:
    seconds: float | None
    rate: float
    bad_every: int
    out: TextIO
    stop: asyncio.Event
    on_tick: Callable[[float, RunningService], None] | None
    stage: bool
    port: int
    http_every: float


async def _run(servers: str, o: _Options, state_dir: Path, live: bool) -> DemoSummary:
    view = _LiveDisplay(o.out) if live else None
    mat = Materializer(name="demo", metrics=True) if view is not None else None
    try:
        return await _run_on(servers, o, state_dir, mat, view)
    finally:
        if mat is not None:
            await mat.shutdown()


class _Printer:
    """Lines between progress updates: above the live view, or on their own line."""

    def __init__(self, out: TextIO, view: _LiveDisplay | None) -> None:
        self.out = out
        self.view = view

    def __call__(self, text: str) -> None:
        if self.view is not None:
            self.view.print(text)
            return
        prefix = "\r\x1b[K" if self.out.isatty() else ""
        self.out.write(prefix + text + "\n")
        self.out.flush()


async def _fetch(url: str) -> dict[str, Any]:
    """``GET /models`` and ``GET /state`` of the running service, over HTTP."""
    import aiohttp

    bodies: dict[str, Any] = {}
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for path in ("/models", "/state"):
            async with http.get(url + path) as response:
                response.raise_for_status()
                bodies[path] = await response.json()
    return bodies


async def _start_table_service(
    servers: str, topics: Topics, run_id: str, o: _Options, state_dir: Path, mat: Any
) -> TableServiceHandle:
    from .table_service import TableServiceConfig, start_table_service

    config = TableServiceConfig(
        servers,
        state_dir,
        topics,
        group_id=f"wine-scorer-{run_id}",
        http_port=o.port,
        # Short session: the broker answers a group join after about half of it.
        consumer_properties={"session_timeout_ms": 2000, "heartbeat_interval_ms": 200},
    )
    return await start_table_service(config, mat)


async def _run_on(
    servers: str,
    o: _Options,
    state_dir: Path,
    mat: Materializer | None,
    view: _LiveDisplay | None,
) -> DemoSummary:
    out, seconds = o.out, o.seconds
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
    table: TableServiceHandle | None = None
    stage_service: ServiceHandle | None = None
    service: RunningService
    if o.stage:
        out.write("service: the two-inlet ModelScoringStage (--stage)\n")
        service = stage_service = (
            scoring_service(
                ServiceConfig(
                    servers,
                    topics,
                    group_id=f"wine-scorer-{run_id}",
                    consumer_properties={"session_timeout_ms": 2000, "heartbeat_interval_ms": 200},
                )
            )
            .named("scoring-service")
            .run(mat)
        )
        schedule = demo_schedule(switch_after)
    else:
        table = await _start_table_service(servers, topics, run_id, o, state_dir, mat)
        service = table
        summary.restored = table.restored
        summary.http_url = table.api.url
        out.write(f"statistics in {state_dir}/ (changelog topic {table.store.topic}): ")
        out.write(_restored_text(table.restored) + "\n")
        url = table.api.url
        out.write(f"HTTP: curl {url}/models  {url}/state  {url}/state/red\n")
        schedule = table_demo_schedule(switch_after)
    out.flush()
    publisher = model_publisher(servers, topics.models, schedule).run()
    colour = None if o.stage else wine_colour
    loader = data_loader(
        servers, topics.data, rate=o.rate, bad_every=o.bad_every, data_type=colour
    ).run()
    start = time.monotonic()
    tty = out.isatty()
    progress = _Progress(out, tty, draw=view is None)
    printer = _Printer(out, view)
    next_fetch = start + o.http_every
    if view is not None:
        view.start(mat)
    try:
        while not o.stop.is_set():
            now = time.monotonic()
            elapsed = now - start
            if seconds is not None and elapsed >= seconds:
                break
            label = service.model_label()
            if service.models_loaded() and (not timeline or timeline[-1] != label):
                timeline.append(label)
            lag = progress.update(elapsed, service)
            if view is not None:
                view.update(progress.line)
            if o.on_tick is not None:
                o.on_tick(elapsed, service)
            summary.max_lag = max(summary.max_lag, lag or 0)
            if table is not None and now >= next_fetch:
                next_fetch = now + o.http_every
                bodies = await _fetch(table.api.url)
                printer(_models_line(bodies["/models"]))
                printer(_state_line(bodies["/state"]))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(o.stop.wait(), 0.25)
        summary.interrupted = o.stop.is_set()
        # Stop loading, let the service catch up (bounded), then drain and shut down.
        await loader.stop()
        await publisher.stop()
        deadline = time.monotonic() + (3.0 if summary.interrupted else 10.0)
        while time.monotonic() < deadline:
            c = service.counters
            if c.scored + c.dead_letters + c.passed >= loader.stats.sent:
                break
            await asyncio.sleep(0.1)
        progress.update(time.monotonic() - start, service, force=True)
        if view is not None:
            view.update(progress.line, final=True)
        elif tty:
            out.write("\n")
        summary.final_lag = service.lag()
        if table is not None:
            await asyncio.sleep(0.3)  # the last statistics' changelog acks
            summary.endpoints = await _fetch(table.api.url)
    finally:
        try:
            await service.drain_and_shutdown()
        finally:
            if view is not None:
                view.stop()
    if table is not None:
        for path, body in summary.endpoints.items():
            out.write(f"\nGET {table.api.url}{path}\n{json.dumps(body, indent=2)}\n")
    summary.seconds = time.monotonic() - start
    summary.records_loaded = loader.stats.sent
    summary.corrupt_loaded = loader.stats.corrupt
    summary.records_scored = service.counters.scored
    summary.records_unscored = service.counters.passed
    summary.dead_letters = service.counters.dead_letters
    summary.models_loaded = service.models_loaded()
    summary.models_rejected = service.models_rejected()
    summary.model_timeline = timeline
    summary.latency_p50_ms = service.latency.whole_run.percentile(50)
    summary.latency_p99_ms = service.latency.whole_run.percentile(99)
    if table is not None:
        summary.last_rejection = next(
            (e for e in (table.cache.error(t) for t in sorted(table.cache.rejected)) if e), None
        )
        summary.scoring_mean_us = table.scoring_us.mean()
        summary.scoring_p99_us = table.scoring_us.percentile(99)
    elif stage_service is not None:
        snap = stage_service.state.snapshot()
        summary.last_rejection = snap.last_rejection_reason
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
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help=f"where the statistics are kept between runs (default {DEFAULT_STATE_DIR}/)",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="HTTP port of the endpoints (default: a free one)"
    )
    parser.add_argument(
        "--http-every",
        type=float,
        default=10.0,
        help="seconds between two fetches of /models and /state by the demo (default 10)",
    )
    parser.add_argument(
        "--stage",
        action="store_true",
        help="run the two-inlet ModelScoringStage service (no store, no endpoints)",
    )
    args = parser.parse_args(argv)
    if args.live:
        try:
            import reactive.observe.live_view  # noqa: F401  (rich, the observe extra)
        except ModuleNotFoundError as exc:
            parser.error(str(exc))
    if not args.stage:
        try:
            import aiohttp  # noqa: F401  (the http extra)
            import rocksdict  # noqa: F401  (the state extra)
        except ModuleNotFoundError as exc:
            parser.error(f"{exc}: the table-based demo needs the http and state extras")

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
                stage=args.stage,
                state_dir=args.state_dir,
                port=args.port,
                http_every=args.http_every,
            )
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)

    try:
        summary = asyncio.run(go())
    except OSError as exc:  # the HTTP port is taken, the broker cannot start, ...
        parser.exit(1, f"{parser.prog}: error: {exc}\n")
    print("\nsummary")
    print(summary.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())

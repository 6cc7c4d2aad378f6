"""Event-time windows over scored wine records: ``python -m samples.windowed_quality``.

It starts an embedded Kafka-protocol broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` is set),
creates an input and an output topic, and runs two streams in this process:

- the **producer**: the wine records of the model-serving sample
  (:func:`samples.model_serving.records.iter_records`), each from one of six wineries
  (the Kafka key; each winery makes one wine type), with event timestamps (``ts_ms``)
  four records a second of event time. Wineries send in bursts (a 90 s pause every
  4.5 minutes of event time, so their sessions end), records arrive up to 4 s out of
  order, and every :data:`LATE_EVERY`-th record arrives three minutes late on purpose.
- the **analytics stream**: reads the topic, scores every record with the sample's tree
  ensemble (the quality, about 4 to 7), then three ``windowed`` operators side by side:
  per-minute tumbling statistics per wine type (count, mean, min, max; 10 s of grace),
  5-minute hopping averages per wine type (advancing by 1 minute) and per-winery sessions
  (30 s gap). Every closed window goes to the output topic (JSON), and so does every late
  record (``late=``: never dropped silently), with the window kind that refused it.

A live table (rich, when stdout is a terminal; plain prints otherwise) shows the latest
windows of each kind and the late records. The input topic has one partition, so the
arrival order (and so which records are late) is the order produced: the run is
deterministic. It ends once every record was read: the windows still open are emitted
at completion, as ``windowed`` does. ``--records`` sets the size (default 3,000, about
10 s), ``--rate`` the records per second sent.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

from connectors.kafka import (
    Consumer,
    ConsumerSettings,
    Producer,
    ProducerRecord,
    ProducerSettings,
    Subscriptions,
    TopicPartition,
)
from connectors.kafka.testkit import EmbeddedBroker, bootstrap_servers, create_topic
from reactive import Flow, Keep, SessionWindows, Sink, Source, TimeWindows, Windowed
from samples.model_serving.models import example_tree_model
from samples.model_serving.records import (
    DEFAULT_START_TS_MS,
    DataRecord,
    _make_record,
    decode_record,
    encode_record,
    iter_records,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = [
    "LATE_EVERY",
    "WINERIES",
    "Dashboard",
    "Scored",
    "main",
    "produced_records",
    "run",
]

#: Winery (the Kafka key and the session key) -> the wine type it makes.
WINERIES: dict[str, str] = {
    "quinta-do-vale": "red",
    "chateau-lune": "red",
    "bodega-sol": "red",
    "weingut-berg": "white",
    "domaine-clair": "white",
    "cantina-rosa": "rose",
}
#: Every LATE_EVERY-th record arrives 3 minutes (event time) late.
LATE_EVERY = 97
LATE_BY_MS = 180_000
EVENT_STEP_MS = 250  # four records a second of event time
DISORDER_MS = 4_000
BURST_MS, PAUSE_MS = 270_000, 90_000  # a winery sends 4.5 minutes, then pauses 90 s

PER_MINUTE = TimeWindows.of(60).grace(10)
HOPPING = TimeWindows.of(300).advance_by(60).grace(10)
SESSIONS = SessionWindows.with_gap(30).grace(10)
KINDS = ("per_minute", "hopping_5min", "session")


def _start_ms() -> int:
    return DEFAULT_START_TS_MS - DEFAULT_START_TS_MS % 60_000  # on a minute


def produced_records(n: int, seed: int = 7) -> Iterator[tuple[str, DataRecord, bool]]:
    """The ``n`` records the producer sends, in sending order: ``(winery, record, late)``.

    Record ``i`` happens at ``start + i * 250 ms`` (event time), minus up to 4 s of
    disorder, or minus 3 minutes when it is one of the late ones. Its winery is drawn among
    those not pausing at that time (each pauses 90 s out of every 6 minutes, staggered).
    """
    rng = random.Random(seed)
    names = list(WINERIES)
    start = _start_ms()
    for i, rec in enumerate(itertools.islice(iter_records(seed), n)):
        t = start + i * EVENT_STEP_MS
        cycle = BURST_MS + PAUSE_MS
        active = [w for j, w in enumerate(names) if (t + j * 61_000) % cycle < BURST_MS]
        winery = rng.choice(active or names)
        late = i % LATE_EVERY == LATE_EVERY - 1
        ts = t - (LATE_BY_MS if late else rng.randrange(DISORDER_MS))
        yield winery, _make_record(f"{winery}/{i}", ts, rec.features), late


@dataclass(frozen=True)
class Scored:
    """One scored record: its winery, wine type, event time (seconds) and quality."""

    winery: str
    wine_type: str
    ts: float
    quality: float
    id: str


Stats = tuple[int, float, float, float]  # count, sum, min, max


def _zero() -> Stats:
    return 0, 0.0, float("inf"), float("-inf")


def _add(acc: Stats, s: Scored) -> Stats:
    n, total, lo, hi = acc
    q = s.quality
    return n + 1, total + q, lo if lo <= q else q, hi if hi >= q else q


def _merge(a: Stats, b: Stats) -> Stats:
    return a[0] + b[0], a[1] + b[1], min(a[2], b[2]), max(a[3], b[3])


def _clock(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%H:%M:%S")


@dataclass
class Dashboard:
    """What the run saw, updated as windows close (the live table reads it)."""

    records: int = 0
    read: int = 0
    windows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    counted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    late: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    recent: dict[str, deque[tuple[str, ...]]] = field(
        default_factory=lambda: {k: deque(maxlen=6) for k in (*KINDS, "late")}
    )
    output_records: int = 0

    def window(self, kind: str, w: Windowed[str, Stats]) -> dict[str, Any]:
        """Record a closed window; return its JSON form for the output topic."""
        n, total, lo, hi = w.value
        self.windows[kind] += 1
        self.counted[kind] += n
        row = {"kind": kind, "key": w.key, "start": w.start, "end": w.end, "count": n}
        row |= {"mean": round(total / n, 3), "min": round(lo, 3), "max": round(hi, 3)}
        span = f"{_clock(w.start)}-{_clock(w.end)}"
        self.recent[kind].append(
            (span, w.key, str(n), f"{total / n:.2f}", f"{lo:.2f}", f"{hi:.2f}")
        )
        return row

    def late_record(self, kind: str, s: Scored) -> dict[str, Any]:
        """Record a late record refused by ``kind``'s windows; return its JSON form."""
        self.late[kind] += 1
        self.recent["late"].append((kind, s.id, _clock(s.ts), s.winery))
        return {"kind": "late", "window": kind, "id": s.id, "key": s.winery, "ts": s.ts}

    def table(self) -> Any:
        """The live view as a rich renderable (rich is imported only here)."""
        from rich.console import Group
        from rich.table import Table

        titles = {
            "per_minute": "per-minute quality by wine type (tumbling 60 s)",
            "hopping_5min": "5-minute averages by wine type (hopping 300 s / 60 s)",
            "session": "winery sessions (gap 30 s)",
        }
        parts: list[Any] = [
            f"read {self.read}/{self.records} records; windows emitted "
            + ", ".join(f"{k} {self.windows[k]}" for k in KINDS)
        ]
        for kind in KINDS:
            t = Table(title=titles[kind], title_justify="left", expand=False)
            for col in ("window", "key", "count", "mean", "min", "max"):
                t.add_column(
                    col, justify="right" if col in ("count", "mean", "min", "max") else "left"
                )
            for row in self.recent[kind]:
                t.add_row(*row)
            parts.append(t)
        late = Table(title="late records (counted, sent to the output topic)", title_justify="left")
        for col in ("refused by", "record", "event time", "winery"):
            late.add_column(col)
        for row in self.recent["late"]:
            late.add_row(*row)
        parts.append(late)
        parts.append("late: " + ", ".join(f"{k} {self.late[k]}" for k in KINDS))
        return Group(*parts)

    def summary(self) -> str:
        """A plain-text summary (what a non-terminal run prints at the end)."""
        lines = [f"records produced {self.records}, read {self.read}"]
        for kind in KINDS:
            lines.append(
                f"{kind:<13} windows {self.windows[kind]:>5}  records in windows "
                f"{self.counted[kind]:>6}  late {self.late[kind]:>3}"
            )
        lines.append(f"output topic: {self.output_records} records (windows and late ones)")
        return "\n".join(lines)

    def plain(self) -> str:
        """The latest windows of each kind as plain text (the fallback of the table)."""
        out = []
        for kind in (*KINDS, "late"):
            for row in self.recent[kind]:
                out.append(f"{kind:<13} " + "  ".join(row))
        return "\n".join(out)


def _score(model: Any, raw: bytes) -> Scored:
    rec = decode_record(raw)
    winery = str(rec.id).split("/", 1)[0]
    return Scored(
        winery, WINERIES[winery], rec.ts_ms / 1000, model.score(rec.features), str(rec.id)
    )


async def run(
    records: int = 3_000,
    *,
    rate: float = 400.0,
    bootstrap: str | None = None,
    out: TextIO | None = None,
    live: bool | None = None,
) -> tuple[Dashboard, str]:
    """Run the sample; return the dashboard and the output topic's name.

    ``bootstrap`` is a running cluster; without it ``KAFKA_BOOTSTRAP_SERVERS`` or else an
    embedded broker started (and stopped) here. ``live`` (default: ``out`` is a terminal)
    shows the rich table; otherwise plain lines are printed.
    """
    out = out or sys.stdout
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
        return await _run(servers, records, rate, out, out.isatty() if live is None else live)
    finally:
        if broker is not None:
            await broker.astop()


async def _run(
    servers: str, records: int, rate: float, out: TextIO, live: bool
) -> tuple[Dashboard, str]:
    run_id = uuid.uuid4().hex[:6]
    source_topic, sink_topic = f"wine-events-{run_id}", f"wine-windows-{run_id}"
    await create_topic(servers, source_topic, 1)
    await create_topic(servers, sink_topic, 1)
    out.write(f"topics: {source_topic} -> {sink_topic}\n")
    board = Dashboard(records=records)
    model = example_tree_model()
    producer_settings = ProducerSettings(servers, linger_ms=5)

    def to_kafka(row: dict[str, Any]) -> ProducerRecord[bytes, bytes]:
        board.output_records += 1
        return ProducerRecord(sink_topic, json.dumps(row).encode(), key=str(row["key"]).encode())

    late_done: list[Any] = []  # the late sinks' completions, kept when they materialize

    def keep(done: Any) -> Any:
        late_done.append(done)
        return done

    def branch(kind: str, spec: Any, key: Any) -> Sink[Scored, Any]:
        late = (
            Flow()
            .map(lambda s: to_kafka(board.late_record(kind, s)))
            .to_mat(Producer.plain_sink(producer_settings), Keep.right)
            .map_materialized_value(keep)
        )
        return (
            Flow()
            .windowed(
                spec,
                key=key,
                timestamp=lambda s: s.ts,
                zero=_zero,
                aggregate=_add,
                merge=_merge,
                late=late,
            )
            .map(lambda w: to_kafka(board.window(kind, w)))
            .to_mat(Producer.plain_sink(producer_settings), Keep.right)
        )

    def count(s: Scored) -> Scored:
        board.read += 1
        return s

    def by_type(s: Scored) -> str:
        return s.wine_type

    consumer = ConsumerSettings(
        servers, None, auto_offset_reset="earliest", properties={"fetch_max_wait_ms": 100}
    )
    analytics = (
        Consumer.plain_source(
            consumer, Subscriptions.assignment_with_offset({TopicPartition(source_topic, 0): 0})
        )
        .take(records)
        .map(lambda r: count(_score(model, r.value)))
        .also_to_mat(branch("hopping_5min", HOPPING, by_type), Keep.right)
        .also_to_mat(branch("session", SESSIONS, lambda s: s.winery), Keep.both)
        .to_mat(branch("per_minute", PER_MINUTE, by_type), Keep.both)
        .run()
    )
    per_second = max(1, round(rate))
    producing = (
        Source.from_iterable(produced_records(records))
        .throttle(per_second, 1.0, maximum_burst=max(1, per_second // 10))
        .map(
            lambda x: ProducerRecord(
                source_topic, encode_record(x[1], compact=True), key=x[0].encode()
            )
        )
        .run_with(Producer.plain_sink(producer_settings))
    )
    (hop_done, session_done), minute_done = analytics
    done = asyncio.gather(producing, hop_done, session_done, minute_done, *late_done)
    await _show(board, done, out, live)
    return board, sink_topic


async def _show(board: Dashboard, done: Any, out: TextIO, live: bool) -> None:
    """Refresh the view until ``done``; then print the summary."""
    if live:
        from rich.console import Console
        from rich.live import Live

        with Live(board.table(), console=Console(file=out), refresh_per_second=4) as view:
            while not done.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(done), 0.25)
                view.update(board.table())
        await done
    else:
        last = time.monotonic()
        while not done.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(done), 0.5)
            if time.monotonic() - last >= 3.0:
                last = time.monotonic()
                out.write(f"... read {board.read}/{board.records} records\n")
                out.flush()
        await done
        out.write("latest windows (kind, window or refused-by, key, count, mean, min, max):\n")
        out.write(board.plain() + "\n")
    out.write("\n" + board.summary() + "\n")
    out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the sample; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m samples.windowed_quality", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--records", type=int, default=3_000, help="records (default 3000)")
    parser.add_argument("--rate", type=float, default=400.0, help="records/s sent (default 400)")
    args = parser.parse_args(argv)
    if args.records < 1 or args.rate <= 0:
        parser.error("--records must be >= 1 and --rate > 0")
    asyncio.run(run(args.records, rate=args.rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``samples/windowed_quality.py`` on the embedded broker: every record read is in a
window or counted late, the late ones on purpose are exactly the per-minute late ones, and
the output topic holds every window and every late record."""

from __future__ import annotations

import io
import json
from collections import Counter

import pytest

from connectors.kafka.testkit import read_records
from samples import windowed_quality as wq

N = 600
ON_PURPOSE = [i for i in range(N) if i % wq.LATE_EVERY == wq.LATE_EVERY - 1]


def test_the_input_has_bounded_disorder_and_late_records_on_purpose() -> None:
    records = list(wq.produced_records(N))
    assert len(records) == N
    assert [i for i, (_, _, late) in enumerate(records) if late] == ON_PURPOSE
    newest = 0
    for winery, rec, late in records:
        assert str(rec.id).startswith(winery + "/")
        behind = newest - rec.ts_ms
        # A late one is behind by more than a minute window and its grace.
        assert behind > 70_000 if late else behind <= wq.DISORDER_MS
        newest = max(newest, rec.ts_ms)
    # Wineries pause: more than one session per winery over 30 minutes of event time.
    long_run = list(wq.produced_records(7_200))
    assert len({w for w, _, _ in long_run}) == len(wq.WINERIES)


@pytest.mark.kafka
async def test_windows_and_late_records_add_up(kafka_bootstrap: str) -> None:
    out = io.StringIO()
    board, topic = await wq.run(N, rate=5_000, bootstrap=kafka_bootstrap, out=out, live=False)
    assert board.read == N
    # Tumbling and session windows: each record in exactly one window, or late.
    assert board.counted["per_minute"] + board.late["per_minute"] == N
    assert board.counted["session"] + board.late["session"] == N
    # The records 3 minutes late are late for the per-minute windows (10 s of grace), and
    # nothing else is (disorder is 4 s).
    assert board.late["per_minute"] == len(ON_PURPOSE)
    assert 0 < board.late["session"] <= len(ON_PURPOSE)
    # Hopping: five 5-minute windows per record; a late record still joins those open.
    assert board.late["hopping_5min"] == 0
    assert 5 * (N - len(ON_PURPOSE)) <= board.counted["hopping_5min"] <= 5 * N

    rows = [
        json.loads(r.value)
        for r in await read_records(kafka_bootstrap, topic, board.output_records)
    ]
    assert len(rows) == sum(board.windows.values()) + sum(board.late.values())
    counted: Counter[str] = Counter()
    for row in rows:
        if row["kind"] == "late":
            counted["late " + row["window"]] += 1
        else:
            counted[row["kind"]] += row["count"]
            assert row["min"] <= row["mean"] <= row["max"]
            assert row["key"] in (
                {"red", "white", "rose"} if row["kind"] != "session" else wq.WINERIES
            )
    assert counted["per_minute"] + counted["late per_minute"] == N
    assert counted["session"] + counted["late session"] == N
    assert counted["late per_minute"] == len(ON_PURPOSE)
    text = out.getvalue()
    assert f"records produced {N}, read {N}" in text
    assert f"late {len(ON_PURPOSE):>3}" in text


def test_the_command_refuses_bad_arguments() -> None:
    with pytest.raises(SystemExit):
        wq.main(["--records", "0"])

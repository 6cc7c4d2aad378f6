"""Subprocess.flow with real processes (the test's own Python): stdin to stdout, back
pressure through the pipe, captured stderr, exit codes, early exit, kill on cancel."""

from __future__ import annotations

import asyncio
import sys

import pytest

from reactive import Keep, Materializer, Sink, Source
from reactive.io import Framing, IOStreamError, ProcessFailedError, ProcessResult, Subprocess
from reactive.testkit import TestSink

PY = sys.executable


def py(code: str) -> list[str]:
    return [PY, "-c", code]


UPPER = "import sys\nfor line in sys.stdin: sys.stdout.write(line.upper()); sys.stdout.flush()"


async def test_stdin_to_stdout_and_the_result(materializer: Materializer) -> None:
    result, lines = (
        Source.from_iterable([b"alpha\nbe", b"ta\n", b"gamma\n"])
        .via_mat(Subprocess.flow(py(UPPER)), Keep.right)
        .via(Framing.lines(100))
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert await lines == ["ALPHA", "BETA", "GAMMA"]
    assert await result == ProcessResult(0, b"")


async def test_non_zero_exit_fails_with_code_and_stderr(materializer: Materializer) -> None:
    code = "import sys\nprint('partial')\nsys.stderr.write('bad things happened\\n')\nsys.exit(3)"
    result, out = (
        Source.empty()
        .via_mat(Subprocess.flow(py(code)), Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    with pytest.raises(ProcessFailedError, match="exited with code 3; stderr: bad things") as ei:
        await out
    assert ei.value.returncode == 3 and ei.value.stderr == b"bad things happened\n"
    with pytest.raises(ProcessFailedError):
        await result
    # without check, the code is the result
    result = await (
        Source.empty()
        .via_mat(Subprocess.flow(py(code), check=False), Keep.right)
        .to(Sink.ignore())
        .run(materializer)
    )
    assert result == ProcessResult(3, b"bad things happened\n")


async def test_missing_program_names_the_command(materializer: Materializer) -> None:
    with pytest.raises(IOStreamError, match="cannot start 'no-such-program-xyz --flag'"):
        await (
            Source.empty()
            .via(Subprocess.flow(["no-such-program-xyz", "--flag"]))
            .run_with(Sink.seq(), materializer)
        )


async def test_process_that_stops_reading_early(materializer: Materializer) -> None:
    """`head -c`-like: the process exits after 10 bytes; upstream is cancelled and the
    output is complete."""
    code = "import sys\nsys.stdout.write(sys.stdin.read(10))"
    out = await (
        Source.repeat(b"x" * 1000).via(Subprocess.flow(py(code))).run_with(Sink.seq(), materializer)
    )
    assert b"".join(out) == b"x" * 10


async def test_slow_consumer_and_cancel_kills_the_process(materializer: Materializer) -> None:
    """A process writing forever: stdout is read only on demand (the pipe fills and the
    process blocks), and cancelling kills it."""
    code = "import sys\nwhile True: sys.stdout.write('y' * 4096); sys.stdout.flush()"
    result, sub = (
        Source.never()
        .via_mat(Subprocess.flow(py(code)), Keep.right)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(3)
    got = [await sub.expect_next() for _ in range(3)]
    assert all(set(c) == {ord("y")} for c in got)
    sub.cancel()
    r = await asyncio.wait_for(result, 10)
    assert r.returncode < 0  # killed by a signal

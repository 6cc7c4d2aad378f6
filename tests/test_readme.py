"""Every ```python block of README.md runs as a complete program.

Each block is written to a file and run with this interpreter in a subprocess, from the
repository root, with a timeout. A block that uses Kafka (it mentions
``KAFKA_BOOTSTRAP_SERVERS`` or imports ``connectors.kafka``) gets
``KAFKA_BOOTSTRAP_SERVERS`` set to a fresh embedded broker started for it (or to the
cluster ``KAFKA_BOOTSTRAP_SERVERS`` already names), so blocks cannot see each other's
topics. A failure names the block: its line in README.md, the heading it is under and its
first line, with the program's output.

The Kafka blocks spend most of their time waiting for their broker (a group join alone
takes seconds), so on a fresh broker each they run ahead, :data:`KAFKA_WORKERS` at a time,
from the first block's test on (while the other blocks run in their tests); each block's
test then checks what its program did exactly as if it had run it. With a cluster named by
``KAFKA_BOOTSTRAP_SERVERS`` (shared by the blocks) they run one by one, in their tests.

Output shown in the README belongs in ```text blocks, commands in ```bash blocks. A
```text block right after a ```python block (blank lines and at most one ``Output:`` line
between) is what that program prints: its stdout must equal it, except that a line
``...`` stands for any lines (none or more). Output that changes from run to run (rates,
counts of a timed run) goes in
a ```text varies block, which is shown and not compared.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from connectors.kafka.testkit import BOOTSTRAP_ENV, EmbeddedBroker, bootstrap_servers

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BLOCK_TIMEOUT = 60.0
"""Seconds a block may run (a Kafka block includes a consumer group join)."""
KAFKA_WORKERS = 4
"""How many Kafka blocks run ahead at a time, each with its own broker."""

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
_PYTHON = {"python", "py", "python3"}


@dataclass(frozen=True)
class Block:
    """One ```python block of README.md."""

    line: int
    """Line number (1-based) of the opening fence."""
    heading: str
    """The last heading above it."""
    code: str
    expected: str | None = None
    """The ```text block right after it (what it prints), if any and not ``varies``."""

    @property
    def first_line(self) -> str:
        return next((ln for ln in self.code.splitlines() if ln.strip()), "")

    @property
    def uses_kafka(self) -> bool:
        return BOOTSTRAP_ENV in self.code or "connectors.kafka" in self.code

    def describe(self) -> str:
        return (
            f"README.md block at line {self.line} under {self.heading!r} "
            f"(first line: {self.first_line!r})"
        )

    @property
    def test_id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")
        return f"L{self.line}-{slug or 'top'}"


def python_blocks(text: str) -> list[Block]:
    """The ```python blocks of a Markdown ``text``; raises on an unclosed fence."""
    blocks: list[Block] = []
    heading = ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        match = _FENCE.match(line)
        if match is None:
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            i += 1
            continue
        fence, start = match["fence"], i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"README.md line {start + 1}: code fence {fence!r} never closed")
        i += 1
        if match["info"].lower() in _PYTHON:
            indent = len(match["indent"])
            code = "\n".join(ln[indent:] if ln[:indent].isspace() else ln for ln in body)
            blocks.append(Block(start + 1, heading, code + "\n", _output_after(lines, i)))
    return blocks


def _output_after(lines: list[str], i: int) -> str | None:
    """The body of a ```text block starting at line ``i`` (after blank lines and at most
    one ``Output:`` line), unless it is marked ``varies``."""
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i < len(lines) and lines[i].strip() == "Output:":  # a label line: still its output
        i += 1
        while i < len(lines) and not lines[i].strip():
            i += 1
    if i == len(lines) or lines[i].strip().split() != ["```text"]:
        return None
    indent = len(lines[i]) - len(lines[i].lstrip())  # a block inside a list item
    end = i + 1
    while end < len(lines) and not lines[end].strip().startswith("```"):
        end += 1
    return "\n".join(ln[indent:] if ln[:indent].isspace() else ln for ln in lines[i + 1 : end])


def output_matches(expected: str, got: str) -> bool:
    """``got`` (a program's stdout) is ``expected`` line by line, trailing spaces and
    blank ends aside; a line ``...`` in ``expected`` stands for any lines."""
    want = [ln.rstrip() for ln in expected.strip("\n").splitlines()]
    have = [ln.rstrip() for ln in got.strip("\n").splitlines()]
    segments: list[list[str]] = [[]]
    for ln in want:
        if ln == "...":
            segments.append([])
        else:
            segments[-1].append(ln)
    if len(segments) == 1:
        return have == want
    first, *middle, last = segments
    if have[: len(first)] != first:
        return False
    pos, end = len(first), len(have) - len(last)
    if end < pos or have[end:] != last:
        return False
    for seg in middle:  # each in order, at its first place after the previous one
        k = next(
            (k for k in range(pos, end - len(seg) + 1) if have[k : k + len(seg)] == seg),
            None,
        )
        if k is None:
            return False
        pos = k + len(seg)
    return True


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Run:
    """What a block's program did."""

    returncode: int | None
    """Its exit status; ``None`` when it did not finish within :data:`BLOCK_TIMEOUT`."""
    stdout: str
    stderr: str


def run_block(block: Block, directory: Path, servers: str | None) -> None:
    """Run ``block`` (with ``servers`` as ``KAFKA_BOOTSTRAP_SERVERS``); fail naming it."""
    check_run(block, execute_block(block, directory, servers))


def run_on_a_fresh_broker(block: Block, directory: Path) -> Run:
    """Run a Kafka block on an embedded broker started for it alone."""
    with EmbeddedBroker() as broker:
        return execute_block(block, directory, broker.bootstrap_servers)


def execute_block(block: Block, directory: Path, servers: str | None) -> Run:
    """Run ``block`` as a program in ``directory``; what it did (checked by
    :func:`check_run`)."""
    script = directory / f"readme_block_line_{block.line}.py"
    script.write_text(block.code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    env.pop(BOOTSTRAP_ENV, None)
    if servers is not None:
        env[BOOTSTRAP_ENV] = servers
    try:
        proc = subprocess.run(
            [sys.executable, str(script)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        return Run(None, _text(exc.stdout), _text(exc.stderr))
    return Run(proc.returncode, proc.stdout, proc.stderr)


def check_run(block: Block, run: Run) -> None:
    """Fail naming ``block`` unless its program finished, with status 0, printing neither
    sign of a coroutine or an exception left behind, and what its ```text block says."""
    if run.returncode is None:
        pytest.fail(
            f"{block.describe()} did not finish within {BLOCK_TIMEOUT:.0f} s\n"
            f"--- stdout ---\n{run.stdout}\n--- stderr ---\n{run.stderr}",
            pytrace=False,
        )
    problems = []
    if run.returncode != 0:
        problems.append(f"exited with status {run.returncode}")
    for sign in ("was never awaited", "exception was never retrieved"):
        if sign in run.stderr:
            problems.append(f"printed {sign!r}")
    if block.expected is not None and not output_matches(block.expected, run.stdout):
        problems.append(f"printed other than its ```text block:\n{block.expected}\n")
    if problems:
        pytest.fail(
            f"{block.describe()} {', '.join(problems)}\n"
            f"--- stdout ---\n{run.stdout}\n--- stderr ---\n{run.stderr}",
            pytrace=False,
        )


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


@pytest.fixture(scope="module")
def kafka_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[int, Future[Run]]]:
    """The runs of the Kafka blocks whose tests were selected, by line, started now on a
    fresh broker each, :data:`KAFKA_WORKERS` at a time; none with a configured cluster."""
    if bootstrap_servers() is not None:
        yield {}
        return
    selected = [
        item.callspec.params["block"]
        for item in request.session.items
        if getattr(item, "function", None) is test_readme_block_runs
        and item.callspec.params["block"].uses_kafka
    ]
    directory = tmp_path_factory.mktemp("readme-kafka-blocks")
    pool = ThreadPoolExecutor(KAFKA_WORKERS, thread_name_prefix="readme-kafka-block")
    try:
        yield {b.line: pool.submit(run_on_a_fresh_broker, b, directory) for b in selected}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.subprocess_only
@pytest.mark.timeout(BLOCK_TIMEOUT + 30)
@pytest.mark.parametrize(
    "block",
    [
        pytest.param(b, id=b.test_id, marks=[pytest.mark.kafka] if b.uses_kafka else [])
        for b in BLOCKS
    ],
)
def test_readme_block_runs(
    block: Block, kafka_runs: dict[int, Future[Run]], tmp_path: Path
) -> None:
    ahead = kafka_runs.get(block.line)
    if ahead is not None:  # started by kafka_runs: the same run, checked the same way
        check_run(block, ahead.result())
    elif not block.uses_kafka:
        run_block(block, tmp_path, None)
    elif (external := bootstrap_servers()) is not None:
        run_block(block, tmp_path, external)
    else:
        check_run(block, run_on_a_fresh_broker(block, tmp_path))


def test_readme_has_python_blocks_and_kafka_ones() -> None:
    assert len(BLOCKS) >= 5
    assert any(b.uses_kafka for b in BLOCKS)


def test_block_extraction() -> None:
    text = (
        "# Top\n```python\nprint(1)\n```\n## Sub\n```text\nout\n```\n"
        "- item:\n\n  ```python\n  x = 1\n  print(x)\n  ```\n```bash\nmake\n```\n"
    )
    blocks = python_blocks(text)
    assert [(b.line, b.heading, b.code) for b in blocks] == [
        (2, "Top", "print(1)\n"),
        (11, "Sub", "x = 1\nprint(x)\n"),
    ]
    assert blocks[1].describe() == ("README.md block at line 11 under 'Sub' (first line: 'x = 1')")
    with pytest.raises(ValueError, match="line 1: code fence '```' never closed"):
        python_blocks("```python\nprint(1)\n")


def test_a_failing_block_is_reported_by_its_place(tmp_path: Path) -> None:
    block = Block(42, "Graphs, cycles", "import sys\nprint('partial')\nsys.exit(3)\n")
    with pytest.raises(pytest.fail.Exception) as info:
        run_block(block, tmp_path, None)
    message = str(info.value)
    assert message.startswith(
        "README.md block at line 42 under 'Graphs, cycles' (first line: 'import sys') "
        "exited with status 3"
    )
    assert "partial" in message


def test_the_contents_list_every_section_in_order() -> None:
    """The Contents list at the top links every ``##`` section, in order (GitHub's
    anchors: lower case, punctuation dropped, spaces as hyphens)."""
    text = README.read_text(encoding="utf-8")
    heads = [ln[3:].strip() for ln in text.splitlines() if ln.startswith("## ")]
    assert heads[0] == "Contents"
    contents = text.split("## Contents\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^- \[(.+)\]\(#([\w-]+)\)$", contents, flags=re.MULTILINE)

    def anchor(h: str) -> str:
        return re.sub(r"[^\w\- ]", "", h.lower().replace("`", "")).replace(" ", "-")

    assert listed == [(h, anchor(h)) for h in heads[1:]]


def test_output_matching() -> None:
    assert output_matches("a\nb", "a  \nb\n")
    assert not output_matches("a\nb", "a\nc\n")
    assert output_matches("a\n...\nz", "a\nb\nc\nz\n")
    assert output_matches("a\n...\nz", "a\nz\n")
    assert not output_matches("a\n...\nz", "a\nb\n")
    blocks = python_blocks("```python\nprint(1)\n```\n\n```text\n1\n```\n")
    assert blocks[0].expected == "1"
    varies = python_blocks("```python\nprint(1)\n```\n```text varies\n2\n```\n")
    assert varies[0].expected is None
    # inside a list item: the text block's indentation is not part of the output
    nested = python_blocks("- x\n\n  ```python\n  print(1)\n  ```\n\n  ```text\n  1\n   2\n  ```\n")
    assert (nested[0].code, nested[0].expected) == ("print(1)\n", "1\n 2")

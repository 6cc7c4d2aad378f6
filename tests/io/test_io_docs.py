"""The README's "Stream IO" example runs as a complete program and prints what the README
says; ``reactive.io`` exports exactly its pinned names, each documented."""

from __future__ import annotations

import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import reactive.io

ROOT = Path(__file__).resolve().parents[2]

IO = {
    "BindFailedError",
    "Compression",
    "CompressionError",
    "FileIO",
    "Framing",
    "FramingError",
    "IOOperationIncompleteError",
    "IOResult",
    "IOStreamError",
    "IncomingConnection",
    "JsonFraming",
    "OutgoingConnection",
    "PartialObjectError",
    "ProcessFailedError",
    "ProcessResult",
    "ServerBinding",
    "StreamConverters",
    "StreamTcpError",
    "Subprocess",
    "Tcp",
}


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


@pytest.mark.subprocess_only
def test_readme_stream_io_example_runs_and_prints_what_it_says() -> None:
    # The section's first program and the output block right after it (the subsections
    # further down have their own, which tests/test_readme.py runs and compares).
    section = readme_section("Stream IO")
    program = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    expected = re.findall(r"```text\n(.*?)```", section, re.S)[0]
    assert section.index("```text\n") > section.index("```python\n")
    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected


def test_reactive_io_exports_are_pinned_and_documented() -> None:
    mod = importlib.import_module("reactive.io")
    assert set(mod.__all__) == IO
    for name in mod.__all__:
        obj = getattr(mod, name)
        assert inspect.getdoc(obj), name
        assert obj.__module__ == "reactive.io", name
        for attr, member in vars(obj).items():
            if not attr.startswith("_") and callable(member):
                assert inspect.getdoc(member), f"{name}.{attr}"
    assert reactive.io.__doc__

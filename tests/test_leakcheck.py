"""The suite-wide leak check (tests/leakcheck.py) fails an async test that leaves a task
running, names it, and leaves alone tests that clean up or say why they do not."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

CASES = textwrap.dedent(
    """
    import asyncio
    import pytest

    async def _forever():
        await asyncio.Event().wait()

    async def test_leaks():
        asyncio.get_running_loop().create_task(_forever(), name="left-here")

    async def test_cleans_up():
        t = asyncio.get_running_loop().create_task(_forever())
        t.cancel()

    @pytest.mark.leaves_tasks("on purpose")
    async def test_says_why():
        asyncio.get_running_loop().create_task(_forever())

    def test_sync():
        pass
    """
)


@pytest.mark.subprocess_only  # a pytest run in tmp_path: not this suite's conftest, asyncio
def test_a_task_left_behind_fails_the_test_and_is_named(tmp_path: Path) -> None:
    (tmp_path / "test_cases.py").write_text(CASES)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.leakcheck",
            "-o",
            "asyncio_mode=auto",
            "-o",
            "markers=leaves_tasks(why): test",
            "-W",
            "ignore::pytest.PytestUnraisableExceptionWarning",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_cases.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "tasks left behind after the test: left-here (_forever)" in out, out
    # A failure in a fixture's teardown is reported as an error of that test.
    assert "4 passed, 1 error" in out, out

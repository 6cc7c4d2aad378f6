"""pytest plugin (entry point ``reactive``): ``materializer`` and ``manual_clock`` fixtures.

The ``materializer`` fixture gives each test its own ``Materializer`` (driven by the
``manual_clock`` when the test also asks for it) and fails the test if, once it ends,
any stream is still running or any asyncio task was left behind.

``materializer`` is an async fixture run by pytest-asyncio, declared with
``pytest_asyncio.fixture``, so it works in both of pytest-asyncio's modes: ``auto`` and
``strict`` (where the test itself needs ``@pytest.mark.asyncio``). Without pytest-asyncio
installed it is a plain ``pytest.fixture`` (left to whatever async plugin is in use).
"""

from __future__ import annotations

import asyncio

import pytest

try:
    from pytest_asyncio import fixture as _async_fixture
except ImportError:  # no pytest-asyncio: let another async plugin handle it
    _async_fixture = pytest.fixture  # type: ignore[assignment]

from typing import TYPE_CHECKING

from .._impl.clock import ManualClock
from .._impl.materializer import Materializer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
def manual_clock() -> ManualClock:
    """A clock that moves only with ``await manual_clock.advance(seconds)``."""
    return ManualClock()


async def _settle(rounds: int = 50) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


def _coro_name(task: asyncio.Task[object]) -> str:
    coro = task.get_coro()
    return getattr(coro, "__qualname__", None) or repr(coro)


def leftover_tasks() -> list[asyncio.Task[object]]:
    """Tasks of the running loop other than the current one that are not done."""
    me = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not me and not t.done()]


@_async_fixture
async def materializer(request: pytest.FixtureRequest) -> AsyncIterator[Materializer]:
    """A fresh materializer; the test fails if it leaves a stream or a task running."""
    clock = (
        request.getfixturevalue("manual_clock") if "manual_clock" in request.fixturenames else None
    )
    mat = Materializer(clock=clock, name=f"test:{request.node.name}")
    yield mat
    await _settle()
    running = mat.running_tasks
    others = leftover_tasks()
    await mat.shutdown()
    for t in leftover_tasks():
        t.cancel()
    await _settle()
    if running:
        pytest.fail(f"{running} stream task(s) still running after the test", pytrace=False)
    if others:
        names = ", ".join(f"{t.get_name()} ({_coro_name(t)})" for t in others)
        pytest.fail(f"tasks left behind after the test: {names}", pytrace=False)

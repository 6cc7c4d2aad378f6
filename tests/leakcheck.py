"""The leak check of every async test (registered by the root conftest).

The ``materializer`` fixture (reactive.testkit) fails a test that leaves a stream or a task
running; this autouse fixture gives the same check to every async test that does not ask
for that fixture (streams run on the default materializer, Kafka sources and sinks, IO
stages, servers): once the test's coroutine returned and the loop settled, any task still
pending on the test's loop fails the test, naming the tasks' coroutines. The tasks are
cancelled first so one leak does not spill into the next test.

A test that means to leave something running (there should be none) says so with
``@pytest.mark.leaves_tasks("why")``.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

# The materializer fixture's own helpers: the same settling and the same task names.
from reactive.testkit.pytest_plugin import _coro_name, _settle, leftover_tasks

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest_asyncio.fixture(autouse=True)
async def _no_tasks_left_behind(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    checked = (
        inspect.iscoroutinefunction(getattr(request, "function", None))
        and "materializer" not in request.fixturenames
        and request.node.get_closest_marker("leaves_tasks") is None
    )
    yield
    if not checked:
        return
    await _settle()
    left = leftover_tasks()
    if not left:
        return
    names = ", ".join(f"{t.get_name()} ({_coro_name(t)})" for t in left)
    for t in left:
        t.cancel()
    await _settle()
    pytest.fail(f"tasks left behind after the test: {names}", pytrace=False)

"""The loop switch of tests/io/conftest.py: the tests run on the loop asked for."""

from __future__ import annotations

import asyncio
import os


async def test_runs_on_the_loop_asked_for() -> None:
    loop = asyncio.get_running_loop()
    if os.environ.get("REACTIVE_EVENT_LOOP", "asyncio") == "uvloop":
        assert type(loop).__module__.startswith("uvloop")
    else:
        assert isinstance(loop, asyncio.BaseEventLoop)
        assert not type(loop).__module__.startswith("uvloop")

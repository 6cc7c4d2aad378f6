"""The loop switch of tests/conftest.py: async tests and ``asyncio.run`` in sync tests run
on the loop asked for (``REACTIVE_EVENT_LOOP`` / ``--event-loop``)."""

from __future__ import annotations

import asyncio
import os

import pytest


def _on_uvloop(loop: asyncio.AbstractEventLoop) -> bool:
    return type(loop).__module__.startswith("uvloop")


def test_the_choice_is_exported(pytestconfig: pytest.Config) -> None:
    assert os.environ["REACTIVE_EVENT_LOOP"] == pytestconfig.getoption("--event-loop")


async def test_async_tests_run_on_the_loop_asked_for() -> None:
    loop = asyncio.get_running_loop()
    if os.environ["REACTIVE_EVENT_LOOP"] == "uvloop":
        assert _on_uvloop(loop)
    else:
        assert isinstance(loop, asyncio.BaseEventLoop)
        assert not _on_uvloop(loop)


def test_asyncio_run_uses_the_loop_asked_for() -> None:
    async def which() -> bool:
        return _on_uvloop(asyncio.get_running_loop())

    assert asyncio.run(which()) == (os.environ["REACTIVE_EVENT_LOOP"] == "uvloop")

"""``REACTIVE_EVENT_LOOP=uvloop`` runs the stream IO tests on uvloop's event loop (most
production asyncio services run on it); unset, they run on the default loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping

import pytest


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """pytest-asyncio's hook: the event loop of every async test in this folder."""
    if os.environ.get("REACTIVE_EVENT_LOOP", "asyncio") == "uvloop":
        import uvloop

        return {"uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}

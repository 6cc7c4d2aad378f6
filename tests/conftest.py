"""Root conftest: registers the Kafka fixtures (``kafka_bootstrap``, ``kafka_topic``, ...)
for every test folder (a non-root conftest cannot set ``pytest_plugins``), and picks the
event loop every test runs on.

``REACTIVE_EVENT_LOOP=uvloop`` (or ``pytest --event-loop=uvloop``) runs the whole suite on
uvloop's event loop, as most production asyncio services run: the async tests get their
loop from uvloop (pytest-asyncio's loop factory hook) and uvloop's policy is installed, so
``asyncio.run`` in a sync test makes a uvloop loop too. Unset, the default loop is used."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping

import pytest

pytest_plugins = ["connectors.kafka.pytest_plugin", "tests.leakcheck"]

EVENT_LOOPS = ("asyncio", "uvloop")


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--event-loop``: the loop every test runs on (default: ``$REACTIVE_EVENT_LOOP``)."""
    parser.addoption(
        "--event-loop",
        choices=EVENT_LOOPS,
        default=os.environ.get("REACTIVE_EVENT_LOOP") or "asyncio",
        help="event loop of every test: asyncio (default) or uvloop; "
        "REACTIVE_EVENT_LOOP sets the default",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Install uvloop's policy when asked for, and export the choice to the tests and to
    the processes they start."""
    loop = config.getoption("--event-loop")
    if loop not in EVENT_LOOPS:  # the environment variable is not checked by choices
        raise pytest.UsageError(
            f"REACTIVE_EVENT_LOOP / --event-loop must be one of {EVENT_LOOPS}, got {loop!r}"
        )
    os.environ["REACTIVE_EVENT_LOOP"] = loop
    if loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """pytest-asyncio's hook: the event loop of every async test."""
    if config.getoption("--event-loop") == "uvloop":
        import uvloop

        return {"uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}

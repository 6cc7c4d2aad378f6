"""A drain cut short (``asyncio.wait_for(control.drain_and_shutdown(), limit)``, the usual
bound on a SIGTERM handler) shuts the consumer down and leaves the stream's completion
alone: it used to cancel it (``await stream_done`` on the future itself), so the stream's
real outcome, e.g. the commit failure that made the drain slow during a broker outage,
was lost: ``stream_completion`` raised CancelledError and no failure was ever reported
(seen in the e2e payments service: a member SIGTERMed during an outage stopped silently).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connectors.kafka import DrainingControl
from connectors.kafka._stages.control import Control
from reactive import Done


def fake_control() -> tuple[Control, asyncio.Future[Any]]:
    """A Control whose stage answers every command at once."""
    shutdown: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def command(cmd: tuple[str, asyncio.Future[Any]]) -> None:
        name, answered = cmd
        answered.set_result(None)
        if name == "shutdown" and not shutdown.done():
            shutdown.set_result(Done)

    return Control(command, dict, shutdown), shutdown


async def test_a_drain_cut_short_keeps_the_streams_outcome() -> None:
    control, shutdown = fake_control()
    stream_done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    draining = DrainingControl(control, stream_done)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(draining.drain_and_shutdown(), 0.05)
    assert shutdown.done()  # the consumer was shut down all the same
    assert not stream_done.cancelled()
    stream_done.set_exception(ValueError("the last commit failed"))
    with pytest.raises(ValueError, match="the last commit failed"):
        await draining.stream_completion


async def test_a_drain_cut_short_on_a_bare_control_keeps_the_awaitable() -> None:
    control, shutdown = fake_control()
    stream_done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(control.drain_and_shutdown(stream_done), 0.05)
    assert shutdown.done()
    assert not stream_done.cancelled()
    stream_done.set_result("done")
    assert await stream_done == "done"

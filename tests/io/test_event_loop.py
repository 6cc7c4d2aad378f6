"""The loop switch of tests/conftest.py: async tests and ``asyncio.run`` in sync tests run
on the loop asked for (``REACTIVE_EVENT_LOOP`` / ``--event-loop``)."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest


def _on_uvloop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the dev extra
        return False
    return isinstance(loop, uvloop.Loop)


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


@pytest.mark.skipif(
    os.environ.get("REACTIVE_EVENT_LOOP") != "uvloop", reason="the uvloop run's loop close"
)
def test_a_transport_left_open_fails_the_loop_close_instead_of_hanging() -> None:
    """A transport left open when a uvloop loop closes (a leak): uvloop's ResourceWarning,
    an error under the suite's warnings-as-errors, used to stop uvloop from closing it,
    and ``close()`` waited forever on its socket. The suite's loops close it and fail
    naming it."""
    from tests.conftest import LeftOpenAtLoopCloseError

    left: list[asyncio.BaseTransport] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        async def leak() -> None:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_connection(asyncio.Protocol, *server.getsockname())
            left.append(transport)  # never closed

        with pytest.raises(LeftOpenAtLoopCloseError, match="unclosed resource <TCPTransport"):
            asyncio.run(leak())
    assert "closed=True" in repr(left[0])  # closed by the loop's close all the same

"""Root conftest: registers the Kafka fixtures (``kafka_bootstrap``, ``kafka_topic``, ...)
for every test folder (a non-root conftest cannot set ``pytest_plugins``), and picks the
event loop every test runs on.

``REACTIVE_EVENT_LOOP=uvloop`` (or ``pytest --event-loop=uvloop``) runs the whole suite on
uvloop's event loop, as most production asyncio services run: the async tests get their
loop from uvloop (pytest-asyncio's loop factory hook) and uvloop's policy is installed, so
``asyncio.run`` in a sync test makes a uvloop loop too. Unset, the default loop is used.

uvloop's ``close()`` closes the transports left open, warning (ResourceWarning) for each
from inside a libuv callback; with warnings as errors (the suite's setting) the warning
raises there, uvloop skips closing that transport, and ``close()`` then waits forever for
its socket (a leak became a hang at loop close: issue 16). The loops made here record
those warnings while closing and fail afterwards, naming each resource left open."""

from __future__ import annotations

import asyncio
import os
import warnings
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

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
    parser.addoption(
        "--subprocess-share",
        default=None,
        metavar="I/N",
        help="run only the I-th of N shares of the tests marked subprocess_only (by node id), "
        "whatever the loop: `make test UVLOOP=1` gives the asyncio run 0/2 and the uvloop "
        "run 1/2, so the two runs at once each take half of them",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The uvloop run leaves out the tests marked ``subprocess_only``: all they run is a
    program in a subprocess (a benchmark run, a README block, the demo, a pytest run of
    their own), which runs on asyncio's own loop whatever the test's loop is (nothing
    outside this file reads ``REACTIVE_EVENT_LOOP``), so running them twice would test
    the same thing twice. With ``--subprocess-share I/N`` (either loop) a run keeps only
    its share of them instead: two runs at once with 0/2 and 1/2 run each one once."""
    share = config.getoption("--subprocess-share")
    if share is None and config.getoption("--event-loop") != "uvloop":
        return
    sub = sorted(i.nodeid for i in items if i.get_closest_marker("subprocess_only"))
    if share is None:
        mine: set[str] = set()
    else:
        try:
            index, count = (int(part) for part in share.split("/"))
            if not 0 <= index < count:
                raise ValueError(share)
        except ValueError:
            raise pytest.UsageError(
                f"--subprocess-share: expected I/N with 0 <= I < N, got {share!r}"
            ) from None
        mine = {nodeid for k, nodeid in enumerate(sub) if k % count == index}
    kept = [i for i in items if i.get_closest_marker("subprocess_only") is None or i.nodeid in mine]
    if len(kept) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


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

        class Policy(uvloop.EventLoopPolicy):  # type: ignore[misc, name-defined]
            def _loop_factory(self) -> asyncio.AbstractEventLoop:
                return _new_uvloop()

        asyncio.set_event_loop_policy(Policy())


class LeftOpenAtLoopCloseError(AssertionError):
    """A transport (or another handle) was still open when its event loop closed."""


def _new_uvloop() -> asyncio.AbstractEventLoop:
    """A uvloop loop whose ``close()`` closes every handle left open, then fails naming
    them (see the module docstring)."""
    import uvloop

    class Loop(uvloop.Loop):  # type: ignore[misc, name-defined]
        def close(self) -> None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ResourceWarning)
                super().close()
            left = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
            if left:
                raise LeftOpenAtLoopCloseError(
                    "left open when the event loop closed: " + "; ".join(left)
                )

    loop: Any = Loop()
    return loop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """pytest-asyncio's hook: the event loop of every async test."""
    if config.getoption("--event-loop") == "uvloop":
        return {"uvloop": _new_uvloop}
    return {"asyncio": asyncio.new_event_loop}

"""StateRegistry listeners: told the name of every registration and unregistration (what
GroupMembership.track_store follows), not of an unregistration that removed nothing; a
failing listener is logged and the others still run; a removed one is not called."""

from __future__ import annotations

import logging

import pytest

from reactive.state import StateRegistry, Stores


def test_listeners_hear_registrations_and_unregistrations(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = StateRegistry()
    heard: list[str] = []

    def boom(name: str) -> None:
        raise ValueError("listener bug")

    registry.add_listener(boom)
    registry.add_listener(heard.append)
    v0, v1 = Stores.in_memory("a").open(), Stores.in_memory("a").open()
    with caplog.at_level(logging.ERROR, logger="reactive.state"):
        registry.register("counts", v0, 0)
    assert heard == ["counts"]
    assert "a listener failed on store 'counts'" in caplog.text
    registry.remove_listener(boom)
    registry.register("counts", v1, 1)
    registry.unregister("counts", v0)
    registry.unregister("counts", v0)  # nothing removed: nothing heard
    assert heard == ["counts", "counts", "counts"]
    assert registry.partitions("counts") == [1]
    registry.remove_listener(heard.append)
    registry.unregister("counts", v1)
    assert heard == ["counts", "counts", "counts"]
    with pytest.raises(TypeError, match="StateRegistry.add_listener: expected a callable"):
        registry.add_listener(3)  # type: ignore[arg-type]

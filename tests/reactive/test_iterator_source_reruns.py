"""A Source.from_iterable over an iterator run a second time says so (the second run got
nothing, silently, before); an iterable is read afresh each run, without a warning."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from reactive import Materializer, Sink, Source

if TYPE_CHECKING:
    import pytest


async def test_a_second_run_on_the_same_iterator_warns(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    src = Source.from_iterable(x for x in range(3))
    with caplog.at_level(logging.WARNING, logger="reactive"):
        assert await src.run_with(Sink.seq(), materializer) == [0, 1, 2]
        assert not caplog.records
        assert await src.run_with(Sink.seq(), materializer) == []
    [record] = caplog.records
    assert "runs again on the same iterator (generator)" in record.getMessage()


async def test_an_iterable_runs_afresh_without_a_warning(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    src = Source.from_iterable(range(3))
    with caplog.at_level(logging.WARNING, logger="reactive"):
        for _ in range(2):
            assert await src.run_with(Sink.seq(), materializer) == [0, 1, 2]
    assert not caplog.records

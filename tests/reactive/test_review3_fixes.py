"""Regression tests of a defect review 3 found in restarts, named in each test's
docstring (they failed before the fix): ``RestartSettings`` took a negative
``max_restarts_within``, which disabled ``max_restarts`` (now a ValueError naming it and
the value: restart.py ``RestartSettings.__post_init__``)."""

from __future__ import annotations

import pytest

from reactive import Materializer, RestartSettings, RestartSource, Source
from reactive.testkit import ManualClock, TestSink


def test_restart_settings_reject_a_negative_max_restarts_within() -> None:
    """DEFECT: RestartSettings validates min_backoff, max_backoff, random_factor and
    max_restarts (a negative one is a ValueError) but takes any number for
    ``max_restarts_within``: ``with_max_restarts(3, -1.0)`` is accepted, and since the
    reset deadline is then always past, the restart counter resets before every check
    and max_restarts never applies (the wrapper restarts for ever, see the next test).
    Suspect: restart.py ``RestartSettings.__post_init__`` (only ``_require_number``)."""
    with pytest.raises(ValueError, match="max_restarts_within"):
        RestartSettings(1.0, 2.0, 0.0).with_max_restarts(3, -1.0)


async def test_a_negative_max_restarts_within_does_not_disable_max_restarts(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    """The effect of the defect above: max_restarts=1 with a negative window, on a
    source that fails at once, restarts for ever at min_backoff instead of failing
    after one restart (either refused when built, or applied: 2 starts then the
    failure)."""
    starts: list[float] = []

    def factory() -> Source[int, object]:
        starts.append(manual_clock.time())
        return Source.failed(RuntimeError(f"attempt {len(starts)}"))

    try:
        settings = RestartSettings(1.0, 1.0, 0.0).with_max_restarts(1, -1.0)
    except ValueError:
        return  # refused when built: fixed
    sub = RestartSource.with_backoff(settings, factory).run_with(TestSink.probe(), materializer)
    sub.request(1)
    for _ in range(5):
        await manual_clock.advance(1.0)
    restarts = len(starts) - 1
    sub.cancel()
    assert restarts == 1, f"restarted {restarts} times despite max_restarts=1"


def test_max_restarts_within_error_names_the_value_and_zero_is_accepted() -> None:
    """The refusal names the argument and the value it got (as the other arguments'
    do); NaN is refused too; 0 (the default when min_backoff is 0) is accepted."""
    with pytest.raises(ValueError, match=r"max_restarts_within must be >= 0 seconds, got -0\.5"):
        RestartSettings(1.0, 2.0, 0.0, max_restarts=3, max_restarts_within=-0.5)
    with pytest.raises(ValueError, match="max_restarts_within .* got nan"):
        RestartSettings(1.0, 2.0, 0.0).with_max_restarts(3, float("nan"))
    assert RestartSettings(0.0, 0.0, 0.0).max_restarts_within == 0.0
    assert RestartSettings(1.0, 2.0, 0.0).with_max_restarts(3, 0).max_restarts_within == 0

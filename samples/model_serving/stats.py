"""Live statistics of a model-serving stage.

:class:`ServingState` is meant to be the materialized value of a scoring stage: the stage calls
:meth:`~ServingState.model_loaded`, :meth:`~ServingState.model_rejected`,
:meth:`~ServingState.record_scored` and :meth:`~ServingState.record_unscored` as it works, and
anyone holding the state calls :meth:`~ServingState.snapshot` to get an immutable
:class:`ServingSnapshot`.  Scoring times are kept in a fixed-size ring of the most recent
``window`` samples, from which the mean, p99 and maximum are computed at snapshot time.

The class is plain Python without locking: use it from one thread (the event loop).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DEFAULT_TIMING_WINDOW",
    "LogHistogram",
    "ServingSnapshot",
    "ServingState",
    "percentile",
]

DEFAULT_TIMING_WINDOW: Final = 4096
"""Default number of most recent scoring times kept for the mean and p99."""


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def percentile(sorted_values: list[float], q: float) -> float:
    """Return the nearest-rank ``q``-th percentile (``0 < q <= 100``) of ascending values.

    This is the smallest value such that at least ``q`` percent of the values are ``<=`` it.
    Raises :class:`ValueError` for an empty list or ``q`` out of range.
    """
    if not sorted_values:
        raise ValueError("percentile of an empty list")
    if not 0.0 < q <= 100.0:
        raise ValueError(f"q must be in (0, 100], got {q!r}")
    rank = math.ceil(q / 100.0 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


class LogHistogram:
    """Quantiles of any number of positive values in bounded memory (a log-bucket sketch).

    A value ``v`` is counted in bucket ``floor(log(v / smallest) / log(1 + precision))``,
    so a bucket spans a ratio of ``1 + precision`` and a quantile is reported within a
    relative error of ``precision / 2`` (the bucket's geometric middle, kept within the
    exact minimum and maximum seen; the first and last ranks are the exact extremes).
    Values at or below ``smallest`` share bucket 0. Memory: one counter per bucket in use,
    at most
    ``log(largest / smallest) / log(1 + precision)`` buckets (about 2,300 for latencies
    from 1 µs to 3 hours at 1 %), however many values were recorded.
    """

    __slots__ = ("_buckets", "_log_step", "_smallest", "count", "maximum", "minimum", "total")

    def __init__(self, precision: float = 0.01, smallest: float = 1e-3) -> None:
        if not 0.0 < precision < 1.0:
            raise ValueError(f"precision must be in (0, 1), got {precision!r}")
        if smallest <= 0.0:
            raise ValueError(f"smallest must be > 0, got {smallest!r}")
        self._buckets: dict[int, int] = {}
        self._log_step = math.log1p(precision)
        self._smallest = smallest
        self.count = 0
        """Values recorded."""
        self.total = 0.0
        """Their sum."""
        self.minimum = math.inf
        self.maximum = -math.inf

    def record(self, value: float) -> None:
        """Count one value (negative values count as 0: a clock step, not a latency)."""
        value = max(value, 0.0)
        index = (
            0 if value <= self._smallest else int(math.log(value / self._smallest) / self._log_step)
        )
        self._buckets[index] = self._buckets.get(index, 0) + 1
        self.count += 1
        self.total += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)

    @property
    def buckets(self) -> int:
        """Buckets in use (the memory held)."""
        return len(self._buckets)

    def percentile(self, q: float) -> float | None:
        """The nearest-rank ``q``-th percentile (``0 < q <= 100``), None when empty."""
        if not 0.0 < q <= 100.0:
            raise ValueError(f"q must be in (0, 100], got {q!r}")
        if not self.count:
            return None
        rank = max(math.ceil(q / 100.0 * self.count), 1)
        if rank == 1:
            return self.minimum  # the extremes are exact
        if rank == self.count:
            return self.maximum
        seen = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                middle = self._smallest * math.exp((index + 0.5) * self._log_step)
                return min(max(middle, self.minimum), self.maximum)
        return self.maximum  # pragma: no cover - the counts add up to count

    def mean(self) -> float | None:
        """The mean of every value recorded, None when empty."""
        return self.total / self.count if self.count else None


@dataclass(frozen=True, slots=True)
class ServingSnapshot:
    """An immutable view of a :class:`ServingState` at ``taken_ms``.

    Model fields are ``None`` until a model is loaded; timing fields are ``None`` until a
    record is scored.  Timing statistics cover the last ``timing_samples`` scorings only.
    """

    taken_ms: int
    started_ms: int
    model_name: str | None
    model_version: int | None
    model_type: str | None
    model_since_ms: int | None
    models_loaded: int
    models_rejected: int
    last_rejection_reason: str | None
    last_rejection_ms: int | None
    records_scored: int
    records_unscored: int
    timing_samples: int
    scoring_time_mean_us: float | None
    scoring_time_p99_us: float | None
    scoring_time_max_us: float | None

    @property
    def has_model(self) -> bool:
        """Whether a model was serving when the snapshot was taken."""
        return self.model_name is not None

    def to_dict(self) -> dict[str, object]:
        """Return the snapshot as a plain dict (JSON- and msgpack-friendly)."""
        return asdict(self)


class ServingState:
    """Mutable serving statistics; see the module docstring.

    ``window`` is the number of most recent scoring times kept (default 4096); ``clock``
    returns the current time in epoch milliseconds and is used wherever a timestamp is not
    given explicitly.
    """

    __slots__ = (
        "_clock",
        "_last_rejection_ms",
        "_last_rejection_reason",
        "_model_name",
        "_model_since_ms",
        "_model_type",
        "_model_version",
        "_models_loaded",
        "_models_rejected",
        "_next",
        "_records_scored",
        "_records_unscored",
        "_ring",
        "_started_ms",
        "_window",
    )

    def __init__(
        self,
        *,
        window: int = DEFAULT_TIMING_WINDOW,
        clock: Callable[[], int] = _wall_clock_ms,
    ) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an int >= 1, got {window!r}")
        self._window = window
        self._clock = clock
        self._started_ms = clock()
        self._model_name: str | None = None
        self._model_version: int | None = None
        self._model_type: str | None = None
        self._model_since_ms: int | None = None
        self._models_loaded = 0
        self._models_rejected = 0
        self._last_rejection_reason: str | None = None
        self._last_rejection_ms: int | None = None
        self._records_scored = 0
        self._records_unscored = 0
        self._ring: list[float] = []
        self._next = 0  # slot the next sample overwrites once the ring is full

    # ------------------------------------------------------------------ updates

    def model_loaded(
        self, name: str, version: int, model_type: str, *, at_ms: int | None = None
    ) -> None:
        """Record that model ``name`` v``version`` of ``model_type`` now serves.

        ``at_ms`` (default: now) becomes the snapshot's ``model_since_ms``.
        """
        self._model_name = name
        self._model_version = version
        self._model_type = model_type
        self._model_since_ms = self._clock() if at_ms is None else at_ms
        self._models_loaded += 1

    def model_rejected(self, reason: str, *, at_ms: int | None = None) -> None:
        """Record that a model message was rejected for ``reason``; the current model stays."""
        self._models_rejected += 1
        self._last_rejection_reason = reason
        self._last_rejection_ms = self._clock() if at_ms is None else at_ms

    def record_scored(self, scoring_time_us: float) -> None:
        """Count one scored record and remember how long scoring took (microseconds)."""
        self._records_scored += 1
        ring = self._ring
        if len(ring) < self._window:
            ring.append(scoring_time_us)
        else:
            ring[self._next] = scoring_time_us
            self._next = (self._next + 1) % self._window

    def record_unscored(self, count: int = 1) -> None:
        """Count ``count`` records that could not be scored (e.g. no model loaded yet)."""
        self._records_unscored += count

    # ------------------------------------------------------------------ queries

    @property
    def window(self) -> int:
        """Capacity of the scoring-time ring."""
        return self._window

    @property
    def has_model(self) -> bool:
        """Whether a model has been loaded."""
        return self._model_name is not None

    @property
    def records_scored(self) -> int:
        """Records scored so far."""
        return self._records_scored

    @property
    def records_unscored(self) -> int:
        """Records that could not be scored so far."""
        return self._records_unscored

    def recent_timings(self) -> list[float]:
        """Return the retained scoring times (microseconds), oldest first."""
        ring = self._ring
        return ring[self._next :] + ring[: self._next]

    def snapshot(self) -> ServingSnapshot:
        """Return an immutable :class:`ServingSnapshot` of the current statistics."""
        timings = sorted(self._ring)
        n = len(timings)
        return ServingSnapshot(
            taken_ms=self._clock(),
            started_ms=self._started_ms,
            model_name=self._model_name,
            model_version=self._model_version,
            model_type=self._model_type,
            model_since_ms=self._model_since_ms,
            models_loaded=self._models_loaded,
            models_rejected=self._models_rejected,
            last_rejection_reason=self._last_rejection_reason,
            last_rejection_ms=self._last_rejection_ms,
            records_scored=self._records_scored,
            records_unscored=self._records_unscored,
            timing_samples=n,
            scoring_time_mean_us=math.fsum(timings) / n if n else None,
            scoring_time_p99_us=percentile(timings, 99.0) if n else None,
            scoring_time_max_us=timings[-1] if n else None,
        )

    def __repr__(self) -> str:
        model = (
            f"{self._model_name!r} v{self._model_version}" if self._model_name is not None else None
        )
        return (
            f"ServingState(model={model}, scored={self._records_scored}, "
            f"unscored={self._records_unscored}, rejected={self._models_rejected})"
        )

"""Summarised logging of the aiokafka client (see :func:`summarize_aiokafka_logs`).

While a broker is unreachable aiokafka logs the same few errors over and over (80-120
lines a second with one consumer: "Unable connect to node ...", "Unable to update
metadata ...", "Failed fetch messages ...", "Group Coordinator Request failed ...").
:class:`RepeatFilter` lets each of those messages through at most once per interval and
says, on the next one it lets through, how many it held back. The connector's own view of
an outage (connection lost since when, still retrying, restored after how long) is logged
by the consumer source on the ``connectors.kafka`` logger.

A :class:`logging.Filter` on a logger sees only the records logged *on that logger*, not
those propagated from its children, so the filter is installed on every ``aiokafka``
logger (``aiokafka``, ``aiokafka.conn``, ``aiokafka.consumer.fetcher``, ...).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DEFAULT_INTERVAL", "RepeatFilter", "summarize_aiokafka_logs"]

#: Seconds between two records of the same aiokafka message, by default.
DEFAULT_INTERVAL = 10.0
#: Most distinct messages the filter remembers (the oldest are forgotten beyond it).
_MAX_KEYS = 1024

# Every module of aiokafka 0.12-0.14 that logs, so that their loggers exist (and get the
# filter) even before the module is imported; loggers created later are caught by
# summarize_aiokafka_logs() being called again when a stage starts.
_AIOKAFKA_LOGGERS = (
    "aiokafka",
    "aiokafka.admin.client",
    "aiokafka.client",
    "aiokafka.cluster",
    "aiokafka.conn",
    "aiokafka.consumer.consumer",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
    "aiokafka.consumer.subscription_state",
    "aiokafka.coordinator.assignors.abstract",
    "aiokafka.coordinator.assignors.range",
    "aiokafka.coordinator.assignors.roundrobin",
    "aiokafka.coordinator.assignors.sticky.partition_movements",
    "aiokafka.coordinator.assignors.sticky.sticky_assignor",
    "aiokafka.helpers",
    "aiokafka.producer.producer",
    "aiokafka.producer.sender",
)


@dataclass
class _Seen:
    last: float  # when a record of this message was last let through
    suppressed: int = 0  # records held back since then


class RepeatFilter(logging.Filter):
    """Let a message through at most once per ``interval`` seconds.

    Records are grouped by logger, level and message *template* (``record.msg`` before
    its arguments are applied: "Unable connect to node with id %s: %s" is one message
    whatever the node and error). The first record of a message passes; the next ones
    within ``interval`` seconds are dropped and counted; the first one after the interval
    passes with ``" [N similar messages suppressed in the last S s]"`` appended. Records
    below ``min_level`` (default WARNING) always pass. ``clock`` (default
    ``time.monotonic``) is injectable for tests.
    """

    def __init__(
        self,
        interval: float | None = DEFAULT_INTERVAL,
        *,
        min_level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if interval is not None and (
            isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0
        ):
            raise ValueError(f"RepeatFilter: interval must be > 0 seconds, got {interval!r}")
        self.interval = None if interval is None else float(interval)
        self.min_level = min_level
        self._clock = clock
        self._seen: dict[tuple[str, int, str], _Seen] = {}
        self.suppressed_total = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level:
            return True
        if self.interval is None:
            return True
        now = self._clock()
        key = (record.name, record.levelno, str(record.msg))
        seen = self._seen.get(key)
        if seen is None:
            if len(self._seen) >= _MAX_KEYS:
                del self._seen[next(iter(self._seen))]
            self._seen[key] = _Seen(now)
            return True
        if now - seen.last < self.interval:
            seen.suppressed += 1
            self.suppressed_total += 1
            return False
        if seen.suppressed:
            message = record.getMessage()
            record.msg = (
                f"{message} [{seen.suppressed} similar message"
                f"{'s' if seen.suppressed > 1 else ''} suppressed in the last "
                f"{now - seen.last:.0f} s]"
            )
            record.args = None
        seen.last = now
        seen.suppressed = 0
        return True


_installed: RepeatFilter | None = None


def summarize_aiokafka_logs(interval: float | None = DEFAULT_INTERVAL) -> RepeatFilter:
    """Install (or re-configure) the :class:`RepeatFilter` on every ``aiokafka`` logger.

    ``interval``: seconds between two records of the same aiokafka message (default
    10 s); ``None`` lets every record through again. Importing
    :mod:`connectors.kafka` installs it with the default, and every consumer source
    calls it again when it starts (aiokafka loggers created since get it too). Returns
    the installed filter.
    """
    global _installed
    if interval is not None and (
        isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0
    ):
        raise ValueError(
            f"summarize_aiokafka_logs: interval must be > 0 seconds or None, got {interval!r}"
        )
    names = {*_AIOKAFKA_LOGGERS}
    names.update(
        name
        for name in list(logging.root.manager.loggerDict)
        if name == "aiokafka" or name.startswith("aiokafka.")
    )
    loggers = [logging.getLogger(name) for name in sorted(names)]
    old = _installed
    if old is not None and old.interval == interval:
        new = old
    else:
        new = RepeatFilter(interval)
        if old is not None:
            for logger in loggers:
                logger.removeFilter(old)
    for logger in loggers:
        if new not in logger.filters:
            logger.addFilter(new)
    _installed = new
    return new


def ensure_installed() -> None:
    """Put the installed filter on aiokafka loggers created since it was installed."""
    summarize_aiokafka_logs(DEFAULT_INTERVAL if _installed is None else _installed.interval)


def installed_interval() -> float | None:
    """The interval of the installed filter (``None``: every record goes through)."""
    current = _installed
    return None if current is None else current.interval

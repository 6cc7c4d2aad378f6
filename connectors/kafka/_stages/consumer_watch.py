"""What a consumer stage reports about its cluster without being asked: lost and restored
connections, and subscribed topics, assigned partitions or patterns the cluster does not have.

Runs beside the poller of :mod:`.consumer` (one task per consumer, started once the consumer
started, ended when a close is requested or the poller ends). Reporting never breaks
consuming: a failure of the watch is logged once and the watch stops.

- Outages: every ``CONNECTION_CHECK_INTERVAL`` it looks at the client's connections (no
  network traffic); see :meth:`ConnectionWatch.check_connection`.
- Missing topics: before subscribing (the poller calls :meth:`ConnectionWatch.check_missing`)
  and then every ``MISSING_WARNING_INTERVAL``, unless the connection is lost.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import TYPE_CHECKING, Any

from .._closing import within
from .._logging import installed_interval as _client_log_interval
from ..subscriptions import (
    AssignmentOffsetsSubscription,
    AssignmentSubscription,
    Subscription,
    TopicPatternSubscription,
    TopicsSubscription,
)

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer

    from ..settings import ConsumerSettings

__all__ = ["ConnectionWatch"]

log = logging.getLogger("connectors.kafka")

#: Seconds between two warnings about a subscribed topic, an assigned partition or a topic
#: pattern that the cluster's metadata does not have (read at each check: tests lower it).
MISSING_WARNING_INTERVAL = 30.0
#: Bound on one metadata request of that check.
_METADATA_TIMEOUT = 10.0
#: Seconds between two looks at the consumer's connections (no network traffic).
CONNECTION_CHECK_INTERVAL = 0.25
#: Seconds between two "still no connection" warnings during an outage.
OUTAGE_REPORT_INTERVAL = 15.0
#: With no connection open, the watcher asks for the cluster metadata at most this often
#: (seconds), waiting at most ``_PROBE_TIMEOUT`` for it: an answer means the client was
#: merely idle (it closes idle connections), none means an outage.
_PROBE_INTERVAL = 1.0
_PROBE_TIMEOUT = 2.0


class ConnectionWatch:
    """The connection and topic watch of one consumer stage (see the module docstring)."""

    def __init__(
        self,
        name: str,
        settings: ConsumerSettings,
        subscription: Subscription,
        closing: asyncio.Future[None],
    ) -> None:
        self._name = name
        self._settings = settings
        self._subscription = subscription
        # Done once the stage asked its poller to close: the watch then ends on its own.
        self._closing = closing
        self._was_missing: list[tuple[str, str]] = []  # found missing by the last check
        # connection watch (see check_connection)
        self._unconnected_since: float | None = None
        self._next_probe = 0.0
        self._lost_since: float | None = None
        self._lost_reported = 0.0
        self._lost_at = ""

    async def run(self, consumer: AIOKafkaConsumer) -> None:
        """The poller's watcher: the connection every ``CONNECTION_CHECK_INTERVAL``
        (:meth:`check_connection`), what is missing every ``MISSING_WARNING_INTERVAL``
        (:meth:`check_missing`, not while the connection is lost)."""
        loop = asyncio.get_running_loop()
        next_missing_check = loop.time() + MISSING_WARNING_INTERVAL
        try:
            # Ends on its own once a close is requested, not only when cancelled.
            while not self._closing.done():
                await asyncio.sleep(CONNECTION_CHECK_INTERVAL)
                await self.check_connection(consumer)
                if self._lost_since is None and loop.time() >= next_missing_check:
                    await self.check_missing(consumer)
                    next_missing_check = loop.time() + MISSING_WARNING_INTERVAL
        except Exception:
            # Reporting must never break consuming: say so once and stop reporting.
            log.warning(
                "[%s] the consumer's connection and topic watch failed; it stops",
                self._name,
                exc_info=True,
            )

    async def check_connection(self, consumer: AIOKafkaConsumer) -> None:
        """Log the connector's own view of an outage on the ``connectors.kafka`` logger.

        The consumer is connected when one of its client's connections is open (it keeps
        one open to fetch, and one to the group coordinator). When none is open at two
        checks in a row, the watcher asks the cluster for its metadata (at most every
        ``_PROBE_INTERVAL``): an answer means the client was only idle (aiokafka closes
        idle connections); no answer within ``_PROBE_TIMEOUT`` means an outage. Then a
        WARNING says the connection is lost and since when; every
        ``OUTAGE_REPORT_INTERVAL`` seconds another says it is still lost and retried
        (aiokafka retries on its own; its repeated errors are summarised, see
        :mod:`connectors.kafka._logging`); once a connection is open again (or the
        metadata answers) a WARNING says it was restored and after how long.
        """
        client: Any = getattr(consumer, "_client", None)
        conns: Any = getattr(client, "_conns", None)
        if not isinstance(conns, dict) or not hasattr(client, "fetch_all_metadata"):
            return  # another aiokafka: no view of the connections
        loop = asyncio.get_running_loop()
        if any(getattr(c, "connected", lambda: True)() for c in list(conns.values())):
            self._unconnected_since = None
            self._restored(loop.time())
            return
        now = loop.time()
        if self._unconnected_since is None:
            self._unconnected_since = now
            return
        if now < self._next_probe:
            return
        try:
            await within(client.fetch_all_metadata(), _PROBE_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            answered = False
            log.debug("[%s] no metadata from Kafka: %r", self._name, exc)
        else:
            answered = True
        now = loop.time()
        self._next_probe = now + _PROBE_INTERVAL
        if answered:
            self._unconnected_since = None
            self._restored(now)
            return
        servers = self._settings.bootstrap_servers
        if self._lost_since is None:
            self._lost_since = self._lost_reported = self._unconnected_since
            started = time.time() - (now - self._lost_since)
            self._lost_at = time.strftime("%H:%M:%S", time.localtime(started))
            interval = _client_log_interval()
            log.warning(
                "[%s] lost the connection to Kafka at %s (since %s); the client retries%s",
                self._name,
                servers,
                self._lost_at,
                f" (its repeated errors are logged once per {interval:g} s)" if interval else "",
            )
        elif now - self._lost_reported >= OUTAGE_REPORT_INTERVAL:
            self._lost_reported = now
            log.warning(
                "[%s] still no connection to Kafka at %s after %.0f s (since %s); retrying",
                self._name,
                servers,
                now - self._lost_since,
                self._lost_at,
            )

    def _restored(self, now: float) -> None:
        if self._lost_since is not None:
            log.warning(
                "[%s] connection to Kafka at %s restored after %.1f s",
                self._name,
                self._settings.bootstrap_servers,
                now - self._lost_since,
            )
            self._lost_since = None

    async def check_missing(self, consumer: AIOKafkaConsumer) -> None:
        """Warn if the source waits for something the cluster does not have.

        A subscription to a topic that does not exist, an assigned partition that does
        not exist, a pattern that matches no topic: aiokafka waits for them without a
        word. This reads the cluster's metadata (all topics: a request that creates
        none) and logs a WARNING naming what is missing; it runs before subscribing
        (a broker that auto-creates topics creates them when the subscription asks for
        their metadata) and then every ``MISSING_WARNING_INTERVAL`` seconds, and logs an
        INFO once what was missing is there. A failed metadata request is only logged at
        DEBUG: an unreachable broker is reported elsewhere.
        """
        client: Any = getattr(consumer, "_client", None)
        if client is None or not hasattr(client, "fetch_all_metadata"):
            return
        try:
            cluster = await within(client.fetch_all_metadata(), _METADATA_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("[%s] reading the cluster metadata failed: %r", self._name, exc)
            return
        missing = self._missing(cluster)
        if missing:
            log.warning(
                "[%s] %s: the source waits and reads nothing from it meanwhile; check the "
                "name or create it (repeated every %g s while missing)",
                self._name,
                "; ".join(f"{what} {detail}" for what, detail in missing),
                MISSING_WARNING_INTERVAL,
            )
        elif self._was_missing:
            log.info(
                "[%s] found now (created meanwhile, or auto-created by the broker when the "
                "consumer asked for it): %s",
                self._name,
                ", ".join(what for what, _ in self._was_missing),
            )
        self._was_missing = missing

    def _missing(self, cluster: Any) -> list[tuple[str, str]]:
        """``(what, detail)`` for each thing the subscription names and ``cluster``
        (aiokafka metadata) does not have."""
        sub = self._subscription
        if isinstance(sub, TopicsSubscription):
            return [
                (f"topic {t!r}", "does not exist")
                for t in sub.topics
                if cluster.partitions_for_topic(t) is None
            ]
        if isinstance(sub, TopicPatternSubscription):
            exclude = self._settings.to_aiokafka_kwargs().get("exclude_internal_topics", True)
            topics = sorted(cluster.topics(exclude))
            if any(re.match(sub.pattern, t) for t in topics):
                return []
            shown = ", ".join(topics[:10]) + (", ..." if len(topics) > 10 else "")
            return [
                (f"a topic matching pattern {sub.pattern!r}", f"(none of: {shown or 'no topic'})")
            ]
        if isinstance(sub, AssignmentSubscription | AssignmentOffsetsSubscription):
            found: list[tuple[str, str]] = []
            for tp in sorted(sub.partitions):
                partitions = cluster.partitions_for_topic(tp.topic)
                if partitions is None:
                    found.append(
                        (f"topic {tp.topic!r} (partition {tp.partition})", "does not exist")
                    )
                elif tp.partition not in partitions:
                    found.append(
                        (
                            f"partition {tp.partition} of topic {tp.topic!r}",
                            f"does not exist (the topic has partitions 0-{max(partitions)})",
                        )
                    )
            return found
        return []

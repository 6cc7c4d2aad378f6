"""Settings refuse values that would hang or fail obscurely later (an Alpakka user's review).

``fetch.max.wait.ms=-1`` and ``session.timeout.ms=-5`` were accepted and the consumer then
fetched nothing, silently; ``request.timeout.ms=-1`` made the producer report that it
could not connect. NaN passed every seconds check (``nan < 0`` and ``nan == 0`` are both
false): ``poll_timeout=nan`` failed the source with "cannot convert float NaN to integer".
Now the int properties are range-checked as Kafka's ConfigException does (none negative,
some at least 1) and every duration in seconds must be finite, each refused at
construction with a ValueError naming the setting.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from connectors.kafka.settings import CommitterSettings, ConsumerSettings, ProducerSettings

B = "localhost:9092"

# -- int properties ----------------------------------------------------------------------

CONSUMER_NON_NEGATIVE = [
    "fetch_max_wait_ms",
    "fetch_max_bytes",
    "fetch_min_bytes",
    "max_partition_fetch_bytes",
    "request_timeout_ms",
    "retry_backoff_ms",
    "auto_commit_interval_ms",
    "metadata_max_age_ms",
    "heartbeat_interval_ms",
    "consumer_timeout_ms",
    "connections_max_idle_ms",
]
CONSUMER_POSITIVE = [
    "max_poll_interval_ms",
    "rebalance_timeout_ms",
    "session_timeout_ms",
    "max_poll_records",
]
PRODUCER_NON_NEGATIVE = [
    "metadata_max_age_ms",
    "request_timeout_ms",
    "max_request_size",
    "retry_backoff_ms",
    "connections_max_idle_ms",
]


def kafka_name(name: str) -> str:
    return name.replace("_", ".")


@pytest.mark.parametrize("name", CONSUMER_NON_NEGATIVE + CONSUMER_POSITIVE)
@pytest.mark.parametrize("spelling", ["aiokafka", "kafka", "string"])
def test_a_negative_consumer_int_property_is_refused(name: str, spelling: str) -> None:
    key = name if spelling == "aiokafka" else kafka_name(name)
    value: Any = "-1" if spelling == "string" else -1
    with pytest.raises(
        ValueError, match=rf"^ConsumerSettings property '{key}' must be >= [01], got"
    ):
        ConsumerSettings(B, properties={key: value})
    with pytest.raises(ValueError, match=rf"ConsumerSettings property '{name}' must be >= [01]"):
        ConsumerSettings(B).with_property(key, value)


@pytest.mark.parametrize("name", [*PRODUCER_NON_NEGATIVE, "transaction_timeout_ms"])
def test_a_negative_producer_int_property_is_refused(name: str) -> None:
    with pytest.raises(
        ValueError,
        match=rf"^ProducerSettings property '{kafka_name(name)}' must be >= [01], got -1",
    ):
        ProducerSettings(B, properties={kafka_name(name): -1})


@pytest.mark.parametrize(
    ("settings", "name"),
    [(ConsumerSettings, n) for n in CONSUMER_POSITIVE]
    + [(ProducerSettings, "transaction_timeout_ms")],
)
def test_zero_is_refused_where_kafka_needs_at_least_one(settings: Any, name: str) -> None:
    with pytest.raises(ValueError, match=f"property '{name}' must be >= 1, got 0"):
        settings(B, properties={name: 0})


@pytest.mark.parametrize(
    ("settings", "name"),
    [(ConsumerSettings, n) for n in CONSUMER_NON_NEGATIVE]
    + [(ProducerSettings, n) for n in PRODUCER_NON_NEGATIVE],
)
def test_zero_is_kept_where_kafka_allows_it(settings: Any, name: str) -> None:
    assert settings(B, properties={name: 0}).properties[name] == 0


def test_producer_fields_keep_their_ranges() -> None:
    with pytest.raises(ValueError, match="'linger_ms' must be >= 0, got -1"):
        ProducerSettings(B, linger_ms=-1)
    with pytest.raises(ValueError, match="'max_batch_size' must be >= 1, got 0"):
        ProducerSettings(B, max_batch_size=0)
    assert ProducerSettings(B, linger_ms=0, max_batch_size=1).max_batch_size == 1


# -- durations in seconds ------------------------------------------------------------------

SECONDS: list[tuple[Any, str]] = [
    (lambda **kw: ConsumerSettings(B, **kw), "poll_timeout"),
    (lambda **kw: ConsumerSettings(B, **kw), "stop_timeout"),
    (lambda **kw: ConsumerSettings(B, **kw), "close_timeout"),
    (lambda **kw: ConsumerSettings(B, **kw), "commit_timeout"),
    (lambda **kw: ConsumerSettings(B, **kw), "commit_time_warning"),
    (lambda **kw: ConsumerSettings(B, **kw), "connect_timeout"),
    (lambda **kw: ProducerSettings(B, **kw), "close_timeout"),
    (lambda **kw: ProducerSettings(B, **kw), "connect_timeout"),
    (lambda **kw: CommitterSettings(**kw), "max_interval"),
]


@pytest.mark.parametrize(("make", "name"), SECONDS)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_duration_must_be_finite(make: Any, name: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{name} must be a finite number of seconds, got {value}"):
        make(**{name: value})


@pytest.mark.parametrize(
    "change",
    [
        lambda: ConsumerSettings(B).with_poll_timeout(math.nan),
        lambda: ConsumerSettings(B).with_commit_timeout(math.nan),
        lambda: ProducerSettings(B).with_close_timeout(math.inf),
        lambda: CommitterSettings().with_max_interval(math.nan),
    ],
)
def test_the_copy_methods_check_too(change: Any) -> None:
    with pytest.raises(ValueError, match="must be a finite number of seconds"):
        change()


@pytest.mark.parametrize(("make", "name"), SECONDS)
def test_finite_durations_are_still_accepted(make: Any, name: str) -> None:
    assert getattr(make(**{name: 1e9}), name) == 1e9

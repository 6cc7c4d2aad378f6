"""Settings of the Kafka stages: consumer, producer and committer (Alpakka's ``*Settings``).

``Subscriptions`` live in :mod:`connectors.kafka.subscriptions` and are
re-exported here.

All settings are frozen dataclasses: every ``with_*`` method returns a changed
copy, so one settings value can be shared by any number of stages.

``properties`` carries client options that have no field of their own. A
property may be named as aiokafka names it (``"max_poll_records"``) or as
Kafka names it (``"max.poll.records"``); names are translated to aiokafka's on
the way in, string values of numeric or boolean options are converted
(``"500"`` -> ``500``, ``"true"`` -> ``True``), and a name that aiokafka's
client does not know is refused at once with ``ValueError`` rather than
ignored. Numeric options are range-checked as Kafka's ``ConfigException``
does: none may be negative (``fetch.max.wait.ms=-1`` or
``session.timeout.ms=-5`` would otherwise leave a consumer silently fetching
nothing), ``max.poll.records``, ``max.poll.interval.ms``,
``session.timeout.ms``, ``rebalance.timeout.ms`` and ``transaction.timeout.ms``
must be at least 1. Every duration field in seconds must be a finite number
(NaN and infinity are refused). A property that names a field
(``"group.id"``, ``"client.id"``, ``"bootstrap.servers"``, ...) sets that field.

What ``to_aiokafka_kwargs()`` leaves out, on purpose:

- the (de)serializers: the stages apply them per record, so a record that
  fails to decode fails the stream with its topic, partition and offset, and
  a supervision strategy can skip it;
- the stage-only settings (``max_buffered_records``, ``poll_timeout``,
  ``stop_timeout``, ``close_timeout``, ``commit_timeout``, ``connect_timeout``,
  ``parallelism``), which aiokafka has no use for.

Consumer offsets are committed by the library (``Committer``), so
``enable_auto_commit`` is always ``False``; asking for ``True`` is an error.

Credentials never show: ``repr``/``str`` print ``'<redacted>'`` for the SASL
password, the SSL context, an OAuth token provider and every property whose
name mentions a password, secret, token, credential, JAAS config, keystore,
truststore or key material; error messages name such properties but never show
their values.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, TypeAlias

from .subscriptions import (
    AssignmentOffsetsSubscription,
    AssignmentSubscription,
    AutoSubscription,
    ManualSubscription,
    RebalanceListener,
    Subscription,
    Subscriptions,
    TopicPatternSubscription,
    TopicsSubscription,
)

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

    from .serde import Deserializer, Serializer

__all__ = [
    "AssignmentOffsetsSubscription",
    "AssignmentSubscription",
    "AutoSubscription",
    "CommitDelivery",
    "CommitterSettings",
    "ConsumerSettings",
    "ManualSubscription",
    "ProducerSettings",
    "RebalanceListener",
    "Subscription",
    "Subscriptions",
    "TopicPatternSubscription",
    "TopicsSubscription",
]

AutoOffsetReset: TypeAlias = Literal["earliest", "latest", "none"]
CommitDelivery: TypeAlias = Literal["wait_for_ack", "send_and_forget"]

_REDACTED = "<redacted>"

# Property names (aiokafka spelling) whose values are secrets.
_SENSITIVE = re.compile(
    r"password|passwd|secret|token|credential|jaas|keystore|truststore|private|ssl|(^|_)key(_|$)",
    re.IGNORECASE,
)


def _is_sensitive(name: str) -> bool:
    return bool(_SENSITIVE.search(name))


# -- property tables -----------------------------------------------------------
# Options of aiokafka 0.14's AIOKafkaConsumer / AIOKafkaProducer that may be
# given as properties, with the type their value must have ("any" is passed
# as is). tests/kafka/test_settings.py checks these against aiokafka's
# signatures.

_Kind = Literal["int", "bool", "str", "any", "acks"]

_CONSUMER_OPTIONS: Mapping[str, _Kind] = MappingProxyType(
    {
        "fetch_max_wait_ms": "int",
        "fetch_max_bytes": "int",
        "fetch_min_bytes": "int",
        "max_partition_fetch_bytes": "int",
        "request_timeout_ms": "int",
        "retry_backoff_ms": "int",
        "auto_commit_interval_ms": "int",
        "check_crcs": "bool",
        "metadata_max_age_ms": "int",
        "partition_assignment_strategy": "any",
        "max_poll_interval_ms": "int",
        "rebalance_timeout_ms": "int",
        "session_timeout_ms": "int",
        "heartbeat_interval_ms": "int",
        "consumer_timeout_ms": "int",
        "max_poll_records": "int",
        "exclude_internal_topics": "bool",
        "connections_max_idle_ms": "int",
        "isolation_level": "str",
        "sasl_kerberos_service_name": "str",
        "sasl_kerberos_domain_name": "str",
        "sasl_oauth_token_provider": "any",
        "client_rack": "str",
    }
)

_PRODUCER_OPTIONS: Mapping[str, _Kind] = MappingProxyType(
    {
        "metadata_max_age_ms": "int",
        "request_timeout_ms": "int",
        "partitioner": "any",
        "max_request_size": "int",
        "retry_backoff_ms": "int",
        "connections_max_idle_ms": "int",
        "enable_idempotence": "bool",
        "transactional_id": "str",
        "transaction_timeout_ms": "int",
        "sasl_kerberos_service_name": "str",
        "sasl_kerberos_domain_name": "str",
        "sasl_oauth_token_provider": "any",
    }
)

# The least value of the int properties (aiokafka spelling); any other int property may
# not be negative either. As Kafka's ConfigDef ranges (``atLeast(0)`` for the byte counts
# and most *_ms, ``atLeast(1)`` for max.poll.interval.ms and max.poll.records), where
# aiokafka would otherwise hang or fail later: a negative fetch.max.wait.ms or
# session.timeout.ms leaves a consumer silently fetching nothing. 0 stays allowed where
# Kafka allows it (a zero session or transaction timeout is refused by the broker).
_INT_MINIMUM: Mapping[str, int] = MappingProxyType(
    {
        "max_poll_interval_ms": 1,
        "max_poll_records": 1,
        "rebalance_timeout_ms": 1,
        "session_timeout_ms": 1,
        "transaction_timeout_ms": 1,
        "max_batch_size": 1,
    }
)

# Kafka property names whose aiokafka spelling is not just dots -> underscores.
_KAFKA_RENAMES: Mapping[str, str] = MappingProxyType(
    {
        "batch.size": "max_batch_size",
        "sasl.mechanisms": "sasl_mechanism",
    }
)


def _option_name(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"property names are non-empty str, got {key!r}")
    return _KAFKA_RENAMES.get(key, key.replace(".", "_").replace("-", "_"))


def _show(name: str, value: Any) -> str:
    return _REDACTED if _is_sensitive(name) else repr(value)


def _coerce(owner: str, key: str, name: str, kind: _Kind, value: Any) -> Any:
    """Convert a property value to the type aiokafka expects, or raise ValueError."""
    if kind == "any":
        return value
    if kind == "int":
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                pass
        if number is not None:
            minimum = _INT_MINIMUM.get(name, 0)
            if number < minimum:
                raise ValueError(
                    f"{owner} property {key!r} must be >= {minimum}, got {_show(name, value)}"
                )
            return number
    elif kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
    elif kind == "str":
        if isinstance(value, str):
            return value
    elif kind == "acks":
        if value in ("all", 0, 1, -1) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip() in ("0", "1", "-1"):
            return int(value.strip())
        expected = "one of 0, 1, -1 or 'all'"
        raise ValueError(f"{owner} property {key!r}: expected {expected}, got {_show(name, value)}")
    raise ValueError(f"{owner} property {key!r}: expected {kind}, got {_show(name, value)}")


_ASSIGNORS = {
    "range": "RangePartitionAssignor",
    "org.apache.kafka.clients.consumer.rangeassignor": "RangePartitionAssignor",
    "roundrobin": "RoundRobinPartitionAssignor",
    "org.apache.kafka.clients.consumer.roundrobinassignor": "RoundRobinPartitionAssignor",
    "sticky": "StickyPartitionAssignor",
    "org.apache.kafka.clients.consumer.stickyassignor": "StickyPartitionAssignor",
}


def _assignment_strategy(value: Any) -> tuple[Any, ...]:
    """Accept assignor classes, or names ("range", "roundrobin", "sticky", Kafka class names)."""
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from aiokafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

    classes = {
        "RangePartitionAssignor": RangePartitionAssignor,
        "RoundRobinPartitionAssignor": RoundRobinPartitionAssignor,
        "StickyPartitionAssignor": StickyPartitionAssignor,
    }
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        items = (items,)
    result = []
    for item in items:
        if isinstance(item, str):
            cls_name = _ASSIGNORS.get(item.strip().lower())
            if cls_name is None:
                raise ValueError(
                    f"unknown partition assignment strategy {item.strip()!r}; aiokafka "
                    "offers 'range', 'roundrobin' and 'sticky' (cooperative-sticky is "
                    "not supported)"
                )
            result.append(classes[cls_name])
        else:
            result.append(item)
    return tuple(result)


# -- shared machinery of the settings classes -----------------------------------


class _ClientSettings:
    """What consumer and producer settings share: properties, repr, common copy methods."""

    __slots__ = ()

    _OWNER: ClassVar[str] = ""
    _OPTIONS: ClassVar[Mapping[str, _Kind]] = MappingProxyType({})
    # Fields that may also be set through properties (aiokafka spelling).
    _PROPERTY_FIELDS: ClassVar[frozenset[str]] = frozenset()
    # Fields never shown by repr.
    _SECRET_FIELDS: ClassVar[frozenset[str]] = frozenset({"sasl_plain_password", "ssl_context"})

    bootstrap_servers: str
    properties: Mapping[str, Any]
    client_id: str | None
    connect_timeout: float
    close_timeout: float
    security_protocol: str | None
    ssl_context: Any
    sasl_mechanism: str | None
    sasl_plain_username: str | None
    sasl_plain_password: str | None

    def _validate_common(self) -> None:
        owner = self._OWNER
        if not isinstance(self.properties, Mapping):
            raise TypeError(f"{owner}: properties must be a mapping, got {self.properties!r}")
        self._route_properties()
        object.__setattr__(self, "bootstrap_servers", _servers(self.bootstrap_servers, owner))
        for name in (
            "client_id",
            "security_protocol",
            "sasl_mechanism",
            "sasl_plain_username",
            "sasl_plain_password",
        ):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(
                    f"{owner}: {name} must be a str or None, got {type(value).__name__}"
                )
        _check_seconds(owner, "connect_timeout", self.connect_timeout, allow_zero=False)
        _check_seconds(owner, "close_timeout", self.close_timeout, allow_zero=True)

    def _route_properties(self) -> None:
        """Normalize ``properties``: translate names, coerce values, move field names to fields."""
        props: dict[str, Any] = {}
        defaults = {f.name: f.default for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        for key, value in dict(self.properties).items():
            name = _option_name(key)
            if name in self._PROPERTY_FIELDS:
                current = getattr(self, name)
                if current is not defaults[name] and current != defaults[name] and current != value:
                    raise ValueError(
                        f"{self._OWNER}: property {key!r} conflicts with the {name} "
                        "argument; give it once (or use with_property to override)"
                    )
                object.__setattr__(self, name, value)
            else:
                props[name] = self._convert_property(key, name, value)
        object.__setattr__(self, "properties", MappingProxyType(props))

    def _convert_property(self, key: str, name: str, value: Any) -> Any:
        kind = self._OPTIONS.get(name)
        if kind is None:
            known = ", ".join(sorted({*self._OPTIONS, *self._PROPERTY_FIELDS}))
            raise ValueError(
                f"{self._OWNER}: unknown property {key!r} (aiokafka has no option "
                f"{name!r}); known: {known}"
            )
        if name == "partition_assignment_strategy":
            return _assignment_strategy(value)
        return _coerce(self._OWNER, key, name, kind, value)

    def _common_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers}
        for name in (
            "client_id",
            "security_protocol",
            "ssl_context",
            "sasl_mechanism",
            "sasl_plain_username",
            "sasl_plain_password",
        ):
            value = getattr(self, name)
            if value is not None:
                kwargs[name] = value
        return kwargs

    def _replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name == "properties":
                shown = ", ".join(f"{k!r}: {_show(k, v)}" for k, v in value.items())
                parts.append(f"properties={{{shown}}}")
            elif f.name in self._SECRET_FIELDS:
                parts.append(f"{f.name}={_REDACTED if value is not None else None}")
            elif f.name == "producer":
                shared = None if value is None else f"<shared {type(value).__name__}>"
                parts.append(f"producer={shared}")
            elif callable(value) and hasattr(value, "__qualname__"):
                parts.append(f"{f.name}={value.__module__}.{value.__qualname__}")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    __str__ = __repr__

    # -- copy methods shared by both settings classes (each returns a new object) --

    def with_bootstrap_servers(self, bootstrap_servers: str | Iterable[str]) -> Self:
        """``"host:port,host:port"`` or a list of ``"host:port"``."""
        return self._replace(bootstrap_servers=bootstrap_servers)

    def with_client_id(self, client_id: str | None) -> Self:
        return self._replace(client_id=client_id)

    def with_property(self, key: str, value: Any) -> Self:
        """Set one client option (aiokafka or Kafka name); a field's name sets the field."""
        name = _option_name(key)
        if name in self._PROPERTY_FIELDS:
            return self._replace(**{name: value})
        return self._replace(properties={**self.properties, name: value})

    def with_properties(
        self, properties: Mapping[str, Any] | None = None, /, **kwargs: Any
    ) -> Self:
        """Set several client options at once (a mapping, keyword arguments, or both)."""
        result = self
        for key, value in {**(properties or {}), **kwargs}.items():
            result = result.with_property(key, value)
        return result

    def with_connect_timeout(self, seconds: float) -> Self:
        return self._replace(connect_timeout=seconds)

    def with_close_timeout(self, seconds: float) -> Self:
        return self._replace(close_timeout=seconds)

    def with_security_protocol(self, security_protocol: str) -> Self:
        """``"PLAINTEXT"``, ``"SSL"``, ``"SASL_PLAINTEXT"`` or ``"SASL_SSL"``."""
        return self._replace(security_protocol=security_protocol)

    def with_ssl_context(self, ssl_context: Any) -> Self:
        """An ``ssl.SSLContext`` (``aiokafka.helpers.create_ssl_context`` makes one)."""
        return self._replace(ssl_context=ssl_context)

    def with_sasl_plain(self, username: str, password: str, mechanism: str = "PLAIN") -> Self:
        """Authenticate with SASL ``mechanism`` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)."""
        return self._replace(
            sasl_mechanism=mechanism, sasl_plain_username=username, sasl_plain_password=password
        )


# One bootstrap server: a host name, an IPv4 address or a bracketed IPv6 address, and a port.
_SERVER = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?):(\d+)")


def _servers(value: Any, owner: str = "settings") -> str:
    """``bootstrap_servers`` as ``"host:port,host:port"``, every entry checked."""
    if isinstance(value, str):
        entries = value.split(",")
    elif isinstance(value, Iterable):
        entries = []
        for v in value:
            if not isinstance(v, str):
                raise TypeError(
                    f"{owner}: bootstrap_servers entries must be str ('host:port'), got {v!r}"
                )
            entries.append(v)
    else:
        raise TypeError(
            f"{owner}: bootstrap_servers must be a str ('host:port,host:port') or a list of "
            f"str, got {value!r}"
        )
    entries = [e.strip() for e in entries]
    if not any(entries):
        raise ValueError(f"{owner}: bootstrap_servers is empty; give 'host:port[,host:port...]'")
    for entry in entries:
        match = _SERVER.fullmatch(entry)
        if match is None or not 0 < int(match.group(1)) < 65536:
            raise ValueError(
                f"{owner}: bad bootstrap_servers entry {entry!r} in {value!r}: expected "
                "'host:port' (port 1-65535), several separated by commas, e.g. "
                "'localhost:9092,broker2:9092'"
            )
    return ",".join(entries)


def _check_seconds(owner: str, name: str, value: float, *, allow_zero: bool) -> None:
    """A duration setting: a finite number of seconds, >= 0 or > 0. NaN and infinity are
    refused (they pass ``< 0`` and ``== 0``): no duration setting means "no limit"."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{owner}: {name} is in seconds (a float), got {value!r}")
    if not math.isfinite(value):
        raise ValueError(
            f"{owner}: {name} must be a finite number of seconds, got {value!r} (for a very "
            "long bound give a large number)"
        )
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{owner}: {name} must be {bound} seconds, got {value!r}")


def _check_count(owner: str, name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be an int >= 1, got {value!r}")


def _check_optional_callable(owner: str, name: str, value: Any) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{owner}: {name} must be a callable or None, got {value!r}")


_SECURITY_FIELDS = frozenset(
    {
        "security_protocol",
        "ssl_context",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
    }
)


# -- ConsumerSettings ----------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class ConsumerSettings(_ClientSettings):
    """Settings of the consumer sources (Alpakka's ``ConsumerSettings``).

    Positional: ``bootstrap_servers`` (``"host:port,host:port"`` or a list; a
    malformed entry is refused with ``ValueError`` naming it), ``group_id``
    (needed for subscriptions by topic and for committing; ``None`` for none, an
    empty string is refused),
    ``key_deserializer``/``value_deserializer`` (``bytes -> value``, see
    :mod:`connectors.kafka.serde`; ``None`` gives raw ``bytes``),
    ``auto_offset_reset`` (where a group with no committed offset starts:
    ``"latest"``, ``"earliest"`` or ``"none"`` to fail), ``properties``
    (further aiokafka / Kafka client options, see the module docstring).

    Keyword-only:

    - ``client_id``, ``group_instance_id`` (static membership): client options.
    - ``max_buffered_records`` (500): at most this many records fetched from
      Kafka and not yet emitted downstream, per source. The source asks
      aiokafka for no more than the free room and, when downstream has no
      demand, takes nothing more: memory stays bounded by this plus what
      aiokafka holds, at most one fetch response per partition
      (``max_partition_fetch_bytes``, ``fetch_max_bytes``), which is kept and
      emitted later, never fetched twice.
    - ``poll_timeout`` (0.05 s): how long one fetch waits for records before
      the source looks again at demand, commits and control requests.
    - ``stop_timeout`` (0.5 s): after ``Control.shutdown()``, the longest the
      source waits for commits still in flight before it closes the consumer.
      It never waits when nothing is in flight (Alpakka's fixed 30 s delay is
      not copied).
    - ``close_timeout`` (5 s): bound on closing the aiokafka consumer.
    - ``commit_timeout`` (15 s): a commit not acknowledged within it fails. Also
      one deadline for a partition revocation, from its start: its waits (the
      buffered records dropped, the offsets committer stages hold committed, the
      commits in flight) share it, and the rebalance listener's time counts
      against it (a listener is never cut short).
    - ``commit_time_warning`` (1 s): commits slower than this are logged.
    - ``connect_timeout`` (10 s): the source fails with a clear error when no
      broker answers within it at start.
    - ``security_protocol`` (``"PLAINTEXT"``, ``"SSL"``, ``"SASL_PLAINTEXT"``,
      ``"SASL_SSL"``), ``ssl_context``, ``sasl_mechanism``,
      ``sasl_plain_username``, ``sasl_plain_password``: passed to aiokafka,
      never printed.
    """

    bootstrap_servers: str
    group_id: str | None = None
    key_deserializer: Deserializer | None = None
    value_deserializer: Deserializer | None = None
    auto_offset_reset: AutoOffsetReset = "latest"
    properties: Mapping[str, Any] = field(default_factory=dict)
    _: KW_ONLY
    client_id: str | None = None
    group_instance_id: str | None = None
    max_buffered_records: int = 500
    poll_timeout: float = 0.05
    stop_timeout: float = 0.5
    close_timeout: float = 5.0
    commit_timeout: float = 15.0
    commit_time_warning: float = 1.0
    connect_timeout: float = 10.0
    security_protocol: str | None = None
    ssl_context: Any = None
    sasl_mechanism: str | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = None

    _OWNER: ClassVar[str] = "ConsumerSettings"
    _OPTIONS: ClassVar[Mapping[str, _Kind]] = _CONSUMER_OPTIONS
    _PROPERTY_FIELDS: ClassVar[frozenset[str]] = _SECURITY_FIELDS | {
        "bootstrap_servers",
        "group_id",
        "key_deserializer",
        "value_deserializer",
        "auto_offset_reset",
        "client_id",
        "group_instance_id",
    }

    def __post_init__(self) -> None:
        owner = self._OWNER
        self._validate_common()
        for name in ("group_id", "group_instance_id"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(
                    f"{owner}: {name} must be a str or None, got {type(value).__name__}"
                )
            if value is not None and not value.strip():
                raise ValueError(
                    f"{owner}: {name} must not be empty (got {value!r}); give a name, or "
                    "None for no consumer group"
                )
        _check_optional_callable(owner, "key_deserializer", self.key_deserializer)
        _check_optional_callable(owner, "value_deserializer", self.value_deserializer)
        if self.auto_offset_reset not in ("earliest", "latest", "none"):
            raise ValueError(
                f"{owner}: auto_offset_reset must be 'earliest', 'latest' or 'none', "
                f"got {self.auto_offset_reset!r}"
            )
        _check_count(owner, "max_buffered_records", self.max_buffered_records)
        _check_seconds(owner, "poll_timeout", self.poll_timeout, allow_zero=True)
        _check_seconds(owner, "stop_timeout", self.stop_timeout, allow_zero=True)
        _check_seconds(owner, "commit_timeout", self.commit_timeout, allow_zero=False)
        _check_seconds(owner, "commit_time_warning", self.commit_time_warning, allow_zero=True)

    def _convert_property(self, key: str, name: str, value: Any) -> Any:
        if name == "enable_auto_commit":
            if value in (False, "false", "False"):
                return False
            raise ValueError(
                f"{self._OWNER}: enable_auto_commit cannot be turned on: the library "
                "commits offsets (Committer, committable sources); with plain sources "
                "store offsets yourself and start from them with "
                "Subscriptions.assignment_with_offset"
            )
        return _ClientSettings._convert_property(self, key, name, value)

    def to_aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``aiokafka.AIOKafkaConsumer`` (no topics, no deserializers).

        ``enable_auto_commit`` is always ``False``; ``client_id``,
        ``group_instance_id`` and the security options are included only when
        set, so aiokafka's defaults apply otherwise.
        """
        kwargs = self._common_kwargs()
        kwargs["group_id"] = self.group_id
        kwargs["auto_offset_reset"] = self.auto_offset_reset
        if self.group_instance_id is not None:
            kwargs["group_instance_id"] = self.group_instance_id
        kwargs.update(self.properties)
        kwargs["enable_auto_commit"] = False
        return kwargs

    # -- copy methods (more on _ClientSettings; each returns a new object) --

    def with_group_id(self, group_id: str | None) -> ConsumerSettings:
        return self._replace(group_id=group_id)

    def with_group_instance_id(self, group_instance_id: str | None) -> ConsumerSettings:
        return self._replace(group_instance_id=group_instance_id)

    def with_key_deserializer(self, key_deserializer: Deserializer | None) -> ConsumerSettings:
        return self._replace(key_deserializer=key_deserializer)

    def with_value_deserializer(self, value_deserializer: Deserializer | None) -> ConsumerSettings:
        return self._replace(value_deserializer=value_deserializer)

    def with_auto_offset_reset(self, auto_offset_reset: AutoOffsetReset) -> ConsumerSettings:
        return self._replace(auto_offset_reset=auto_offset_reset)

    def with_max_buffered_records(self, max_buffered_records: int) -> ConsumerSettings:
        return self._replace(max_buffered_records=max_buffered_records)

    def with_poll_timeout(self, seconds: float) -> ConsumerSettings:
        return self._replace(poll_timeout=seconds)

    def with_stop_timeout(self, seconds: float) -> ConsumerSettings:
        return self._replace(stop_timeout=seconds)

    def with_commit_timeout(self, seconds: float) -> ConsumerSettings:
        return self._replace(commit_timeout=seconds)

    def with_commit_time_warning(self, seconds: float) -> ConsumerSettings:
        return self._replace(commit_time_warning=seconds)


# -- ProducerSettings ----------------------------------------------------------


@dataclass(frozen=True, slots=True, repr=False)
class ProducerSettings(_ClientSettings):
    """Settings of the producer stages (Alpakka's ``ProducerSettings``).

    Positional: ``bootstrap_servers``, ``key_serializer``/``value_serializer``
    (``value -> bytes``, see :mod:`connectors.kafka.serde`; ``None`` means
    keys and values must already be ``bytes`` or ``None``), ``properties``
    (further aiokafka / Kafka client options, see the module docstring).

    Keyword-only:

    - ``client_id``.
    - ``acks`` (``"all"``): ``"all"``/``-1``, ``1`` or ``0``.
    - ``linger_ms`` (0), ``max_batch_size`` (16384 bytes, Kafka's
      ``batch.size``), ``compression_type`` (``None``, ``"gzip"``,
      ``"snappy"``, ``"lz4"``, ``"zstd"``; all but gzip need extra packages).
    - ``parallelism`` (1000): sends in flight per producer stage; results are
      still emitted in input order. High enough for aiokafka to fill batches.
    - ``close_timeout`` (10 s): bound on flushing and closing the producer
      when the stage stops.
    - ``connect_timeout`` (10 s): the stage fails with a clear error when no
      broker answers within it at start.
    - ``max_block`` (60 s, Kafka's ``max.block.ms``): bound on committing or
      aborting a transaction (``Transactional.sink``/``flow``); past it the stage
      fails with ``KafkaTransactionError`` instead of waiting for good.
    - security options as in :class:`ConsumerSettings`.
    - ``producer`` (``None``): a shared, started ``AIOKafkaProducer`` the stages use
      instead of creating their own; set it with :meth:`with_producer`.
    """

    bootstrap_servers: str
    key_serializer: Serializer | None = None
    value_serializer: Serializer | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)
    _: KW_ONLY
    client_id: str | None = None
    acks: int | str = "all"
    linger_ms: int = 0
    max_batch_size: int = 16384
    compression_type: str | None = None
    parallelism: int = 1000
    close_timeout: float = 10.0
    connect_timeout: float = 10.0
    max_block: float = 60.0
    security_protocol: str | None = None
    ssl_context: Any = None
    sasl_mechanism: str | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = None
    # Not compared: two settings differing only in their shared producer are equal options.
    producer: Any = field(default=None, compare=False)

    _OWNER: ClassVar[str] = "ProducerSettings"
    _OPTIONS: ClassVar[Mapping[str, _Kind]] = _PRODUCER_OPTIONS
    _PROPERTY_FIELDS: ClassVar[frozenset[str]] = _SECURITY_FIELDS | {
        "bootstrap_servers",
        "key_serializer",
        "value_serializer",
        "client_id",
        "acks",
        "linger_ms",
        "max_batch_size",
        "compression_type",
    }

    def __post_init__(self) -> None:
        owner = self._OWNER
        self._validate_common()
        object.__setattr__(self, "acks", _coerce(owner, "acks", "acks", "acks", self.acks))
        for name in ("linger_ms", "max_batch_size"):
            object.__setattr__(self, name, _coerce(owner, name, name, "int", getattr(self, name)))
        if self.linger_ms < 0:
            raise ValueError(f"{owner}: linger_ms must be >= 0, got {self.linger_ms}")
        _check_count(owner, "max_batch_size", self.max_batch_size)
        if self.compression_type not in (None, "gzip", "snappy", "lz4", "zstd"):
            raise ValueError(
                f"{owner}: compression_type must be None, 'gzip', 'snappy', 'lz4' or "
                f"'zstd', got {self.compression_type!r}"
            )
        _check_optional_callable(owner, "key_serializer", self.key_serializer)
        _check_optional_callable(owner, "value_serializer", self.value_serializer)
        _check_count(owner, "parallelism", self.parallelism)
        _check_seconds(owner, "max_block", self.max_block, allow_zero=False)
        if self.producer is not None:
            _check_shareable(f"{owner}.with_producer", self.producer)

    def to_aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``aiokafka.AIOKafkaProducer`` (no serializers)."""
        kwargs = self._common_kwargs()
        kwargs["acks"] = self.acks
        kwargs["linger_ms"] = self.linger_ms
        kwargs["max_batch_size"] = self.max_batch_size
        if self.compression_type is not None:
            kwargs["compression_type"] = self.compression_type
        kwargs.update(self.properties)
        return kwargs

    # -- copy methods (more on _ClientSettings; each returns a new object) --

    def with_key_serializer(self, key_serializer: Serializer | None) -> ProducerSettings:
        return self._replace(key_serializer=key_serializer)

    def with_value_serializer(self, value_serializer: Serializer | None) -> ProducerSettings:
        return self._replace(value_serializer=value_serializer)

    def with_acks(self, acks: int | str) -> ProducerSettings:
        return self._replace(acks=acks)

    def with_linger_ms(self, linger_ms: int) -> ProducerSettings:
        return self._replace(linger_ms=linger_ms)

    def with_max_batch_size(self, max_batch_size: int) -> ProducerSettings:
        return self._replace(max_batch_size=max_batch_size)

    def with_compression_type(self, compression_type: str | None) -> ProducerSettings:
        return self._replace(compression_type=compression_type)

    def with_parallelism(self, parallelism: int) -> ProducerSettings:
        return self._replace(parallelism=parallelism)

    def with_max_block(self, seconds: float) -> ProducerSettings:
        """A copy whose transaction commits and aborts fail after ``seconds``."""
        return self._replace(max_block=seconds)

    # -- a shared producer (Alpakka's withProducer / createKafkaProducer) --

    def with_producer(self, producer: AIOKafkaProducer | None) -> ProducerSettings:
        """A copy whose stages send through ``producer``, a started ``AIOKafkaProducer``
        the application owns (Alpakka's ``withProducer``; ``None``: each stage creates
        its own again).

        Every producer stage (``Producer.plain_sink``, ``flexi_flow``,
        ``flow_with_context``, ``committable_sink``) materialized with these settings uses
        it and never closes it: not when it completes, fails or is cancelled (Alpakka's
        ``closeProducerOnStop = false``); close it yourself once its streams are done.
        A stage that completes waits for the acknowledgements of its own records only,
        not for a producer-wide flush (other streams' records). A stage that fails or is
        cancelled stops waiting for its records; those already handed to the producer
        may still be written. The producer's own configuration applies (bootstrap
        servers, ``acks``, ``linger_ms``, compression, ``max_request_size``, ...);
        these settings' serializers and ``parallelism`` still apply per stage.

        ``create_producer()`` makes one from these settings. A transactional producer
        cannot be shared (its transactions would mix the records of every stream):
        refused here, and the ``Transactional`` stages refuse shared settings.
        """
        if producer is not None:
            _check_shareable("ProducerSettings.with_producer", producer)
        return self._replace(producer=producer)

    def create_producer(self) -> AIOKafkaProducer:
        """A new, not yet started ``AIOKafkaProducer`` configured by these settings
        (Alpakka's ``createKafkaProducer``), to share between streams with
        :meth:`with_producer`. Start and close it with ``async with`` (aiokafka's own
        ``start()`` / ``stop()``)::

            async with settings.create_producer() as producer:
                shared = settings.with_producer(producer)
                ...  # run the streams with ``shared``

        The serializers are not given to it: the stages apply them per record.
        """
        from aiokafka import AIOKafkaProducer

        return AIOKafkaProducer(**self.to_aiokafka_kwargs())


def _check_shareable(owner: str, producer: Any) -> None:
    """Refuse what cannot be a shared producer: not an ``AIOKafkaProducer``, or one with a
    ``transactional_id``."""
    from aiokafka import AIOKafkaProducer

    if not isinstance(producer, AIOKafkaProducer):
        raise TypeError(
            f"{owner}: expected an aiokafka.AIOKafkaProducer (or None), got "
            f"{type(producer).__name__}"
        )
    txn = getattr(producer, "_txn_manager", None)
    if txn is not None and getattr(txn, "transactional_id", None) is not None:
        raise ValueError(
            f"{owner}: a transactional producer (transactional_id "
            f"{txn.transactional_id!r}) cannot be shared: one producer's transaction would "
            "hold the records of every stream using it; use the Transactional stages, "
            "each with its own transactional_id"
        )


# -- CommitterSettings -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommitterSettings:
    """Settings of ``Committer.sink``/``flow`` (Alpakka's ``CommitterSettings``).

    - ``max_batch`` (1000): commit once this many offsets were aggregated.
    - ``max_interval`` (10 s): commit what was aggregated at least this often.
    - ``parallelism`` (1): commit batches in flight at once.
    - ``delivery``: ``"wait_for_ack"`` (back-pressure until the broker
      acknowledged the commit) or ``"send_and_forget"`` (start the commit and
      go on).
    """

    max_batch: int = 1000
    max_interval: float = 10.0
    parallelism: int = 1
    delivery: CommitDelivery = "wait_for_ack"

    def __post_init__(self) -> None:
        _check_count("CommitterSettings", "max_batch", self.max_batch)
        _check_seconds("CommitterSettings", "max_interval", self.max_interval, allow_zero=False)
        _check_count("CommitterSettings", "parallelism", self.parallelism)
        if self.delivery not in ("wait_for_ack", "send_and_forget"):
            raise ValueError(
                "CommitterSettings: delivery must be 'wait_for_ack' or 'send_and_forget', "
                f"got {self.delivery!r}"
            )

    def with_max_batch(self, max_batch: int) -> CommitterSettings:
        return dataclasses.replace(self, max_batch=max_batch)

    def with_max_interval(self, seconds: float) -> CommitterSettings:
        return dataclasses.replace(self, max_interval=seconds)

    def with_parallelism(self, parallelism: int) -> CommitterSettings:
        return dataclasses.replace(self, parallelism=parallelism)

    def with_delivery(self, delivery: CommitDelivery) -> CommitterSettings:
        return dataclasses.replace(self, delivery=delivery)


def _shared_producer_problem(producer: Any) -> str | None:
    """Why a shared producer (``ProducerSettings.with_producer``) cannot send now, or
    None: closed by the application, never started, or its sender task ended."""
    sender_task = getattr(getattr(producer, "_sender", None), "sender_task", None)
    if getattr(producer, "_closed", False):
        return "is closed (stopped by the application)"
    if sender_task is None:
        return (
            "was not started: await producer.start() (or use `async with "
            "settings.create_producer() as producer`) first"
        )
    if sender_task.done():
        return "cannot send: its sender task ended (it failed or was stopped)"
    return None

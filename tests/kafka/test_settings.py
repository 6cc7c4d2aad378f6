"""connectors.kafka.settings and subscriptions: defaults, copies, translation, redaction."""

import dataclasses
import inspect
import ssl

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

from connectors.kafka import settings as settings_module
from connectors.kafka.serde import str_deserializer, str_serializer
from connectors.kafka.settings import (
    AssignmentOffsetsSubscription,
    AssignmentSubscription,
    AutoSubscription,
    CommitterSettings,
    ConsumerSettings,
    ManualSubscription,
    ProducerSettings,
    Subscriptions,
    TopicPatternSubscription,
    TopicsSubscription,
)
from connectors.kafka.testkit import produce_values, read_values

SECRET = "s3cr3t-Value"


# -- ConsumerSettings --


def test_consumer_defaults_and_positional_order():
    s = ConsumerSettings("b:9092", "g", None, str_deserializer, "earliest", {"max_poll_records": 7})
    assert (s.bootstrap_servers, s.group_id, s.value_deserializer) == (
        "b:9092",
        "g",
        str_deserializer,
    )
    assert s.auto_offset_reset == "earliest"
    assert dict(s.properties) == {"max_poll_records": 7}
    d = ConsumerSettings("b:9092")
    assert (d.group_id, d.key_deserializer, d.auto_offset_reset) == (None, None, "latest")
    assert d.stop_timeout == 0.5 and d.max_buffered_records == 500
    assert d.commit_timeout == 15.0 and d.connect_timeout == 10.0


def test_consumer_with_methods_copy():
    base = ConsumerSettings("b:9092")
    changed = (
        base.with_group_id("g")
        .with_bootstrap_servers(["h1:1", "h2:2"])
        .with_client_id("c")
        .with_auto_offset_reset("earliest")
        .with_key_deserializer(str_deserializer)
        .with_value_deserializer(str_deserializer)
        .with_stop_timeout(0)
        .with_max_buffered_records(10)
        .with_commit_timeout(2)
        .with_connect_timeout(3)
        .with_poll_timeout(0.01)
        .with_close_timeout(1)
        .with_commit_time_warning(0.5)
        .with_group_instance_id("i")
    )
    assert base == ConsumerSettings("b:9092")  # unchanged
    assert changed.group_id == "g" and changed.bootstrap_servers == "h1:1,h2:2"
    assert (changed.client_id, changed.auto_offset_reset, changed.stop_timeout) == (
        "c",
        "earliest",
        0,
    )
    assert changed.key_deserializer is str_deserializer
    assert (changed.max_buffered_records, changed.commit_timeout, changed.connect_timeout) == (
        10,
        2,
        3,
    )
    assert changed.group_instance_id == "i"
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed.group_id = "x"  # type: ignore[misc]


def test_consumer_to_aiokafka_kwargs_translates_kafka_names():
    s = ConsumerSettings("b:9092", "g", auto_offset_reset="earliest").with_properties(
        {
            "max.poll.records": "50",
            "fetch.max.wait.ms": 100,
            "session.timeout.ms": "1000",
            "check.crcs": "false",
            "isolation.level": "read_committed",
            "partition.assignment.strategy": "range,roundrobin",
        },
        heartbeat_interval_ms=100,
    )
    kwargs = s.to_aiokafka_kwargs()
    assert kwargs == {
        "bootstrap_servers": "b:9092",
        "group_id": "g",
        "auto_offset_reset": "earliest",
        "enable_auto_commit": False,
        "max_poll_records": 50,
        "fetch_max_wait_ms": 100,
        "session_timeout_ms": 1000,
        "heartbeat_interval_ms": 100,
        "check_crcs": False,
        "isolation_level": "read_committed",
        "partition_assignment_strategy": (RangePartitionAssignor, RoundRobinPartitionAssignor),
    }


def test_field_properties_set_fields():
    s = ConsumerSettings("b:9092").with_property("group.id", "g").with_property("client.id", "c")
    s = s.with_property("auto.offset.reset", "earliest").with_property("bootstrap.servers", "x:1")
    assert (s.group_id, s.client_id, s.auto_offset_reset, s.bootstrap_servers) == (
        "g",
        "c",
        "earliest",
        "x:1",
    )
    assert dict(s.properties) == {}
    assert ConsumerSettings("b:9092", properties={"group.id": "g"}).group_id == "g"
    with pytest.raises(ValueError, match="'group.id' conflicts with the group_id argument"):
        ConsumerSettings("b:9092", "g1", properties={"group.id": "g2"})


def test_auto_commit_cannot_be_enabled():
    assert ConsumerSettings("b:9092").to_aiokafka_kwargs()["enable_auto_commit"] is False
    assert "enable_auto_commit" not in ConsumerSettings("b:9092").properties
    with pytest.raises(ValueError, match="enable_auto_commit cannot be turned on"):
        ConsumerSettings("b:9092").with_property("enable.auto.commit", "true")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("no.such.option", 1, "unknown property 'no.such.option'"),
        ("max.poll.records", "many", "property 'max.poll.records': expected int"),
        ("check.crcs", "yes", "expected bool"),
        ("partition.assignment.strategy", "cooperative-sticky", "cooperative-sticky"),
    ],
)
def test_bad_consumer_properties_fail_early(key, value, message):
    with pytest.raises(ValueError, match=message):
        ConsumerSettings("b:9092").with_property(key, value)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"auto_offset_reset": "smallest"}, ValueError),
        ({"max_buffered_records": 0}, ValueError),
        ({"stop_timeout": -1}, ValueError),
        ({"commit_timeout": 0}, ValueError),
        ({"connect_timeout": "10"}, TypeError),
        ({"group_id": 5}, TypeError),
        ({"value_deserializer": "str"}, TypeError),
        ({"bootstrap_servers": ""}, ValueError),
        ({"properties": [("a", 1)]}, TypeError),
    ],
)
def test_consumer_validation(change, error):
    with pytest.raises(error):
        dataclasses.replace(ConsumerSettings("b:9092"), **change)


# -- ProducerSettings --


def test_producer_defaults_and_kwargs():
    s = ProducerSettings("b:9092", str_serializer)
    assert s.key_serializer is str_serializer and s.value_serializer is None
    assert (s.acks, s.linger_ms, s.parallelism) == ("all", 0, 1000)
    assert s.to_aiokafka_kwargs() == {
        "bootstrap_servers": "b:9092",
        "acks": "all",
        "linger_ms": 0,
        "max_batch_size": 16384,
    }


def test_producer_properties_and_with_methods():
    s = (
        ProducerSettings("b:9092")
        .with_properties({"batch.size": "1000", "linger.ms": "5", "acks": "1"})
        .with_property("request.timeout.ms", 2000)
        .with_compression_type("gzip")
        .with_client_id("p")
        .with_parallelism(10)
        .with_close_timeout(1)
        .with_value_serializer(str_serializer)
    )
    assert (s.max_batch_size, s.linger_ms, s.acks, s.parallelism) == (1000, 5, 1, 10)
    assert s.to_aiokafka_kwargs() == {
        "bootstrap_servers": "b:9092",
        "client_id": "p",
        "acks": 1,
        "linger_ms": 5,
        "max_batch_size": 1000,
        "compression_type": "gzip",
        "request_timeout_ms": 2000,
    }
    assert s.with_acks(-1).acks == -1


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"acks": 2}, ValueError),
        ({"acks": True}, ValueError),
        ({"parallelism": 0}, ValueError),
        ({"compression_type": "brotli"}, ValueError),
        ({"linger_ms": -1}, ValueError),
        ({"key_serializer": 1}, TypeError),
    ],
)
def test_producer_validation(change, error):
    with pytest.raises(error):
        dataclasses.replace(ProducerSettings("b:9092"), **change)


def test_unknown_producer_property_fails():
    with pytest.raises(ValueError, match="unknown property 'max.poll.records'"):
        ProducerSettings("b:9092").with_property("max.poll.records", 1)


# -- credentials never show --


def _secret_settings():
    context = ssl.create_default_context()
    consumer = (
        ConsumerSettings("b:9092", "g")
        .with_sasl_plain("alice", SECRET, "SCRAM-SHA-256")
        .with_security_protocol("SASL_SSL")
        .with_ssl_context(context)
        .with_property("sasl.oauth.token.provider", SECRET)
    )
    producer = (
        ProducerSettings("b:9092")
        .with_sasl_plain("alice", SECRET)
        .with_ssl_context(context)
        .with_property("sasl_oauth_token_provider", SECRET)
    )
    return context, consumer, producer


def test_credentials_absent_from_repr_and_str():
    context, consumer, producer = _secret_settings()
    for settings in (consumer, producer):
        for text in (repr(settings), str(settings), f"{settings}", repr([settings])):
            assert SECRET not in text
            assert repr(context) not in text
            assert "<redacted>" in text
        assert "sasl_plain_username='alice'" in repr(settings)
        assert settings.sasl_plain_password == SECRET  # still there for the client
    assert consumer.to_aiokafka_kwargs()["sasl_plain_password"] == SECRET
    assert consumer.to_aiokafka_kwargs()["ssl_context"] is context


def test_credentials_absent_from_error_messages():
    _, consumer, _ = _secret_settings()
    with pytest.raises(ValueError) as excinfo:
        consumer.with_property("sasl.oauth.token.provider", SECRET).with_property(
            "no.such.thing", SECRET
        )
    assert SECRET not in str(excinfo.value)
    with pytest.raises(TypeError) as type_error:
        consumer.with_sasl_plain("alice", 12345)  # type: ignore[arg-type]
    assert "12345" not in str(type_error.value)


def test_sensitive_property_names():
    for name in ["sasl_plain_password", "ssl_keyfile_password", "api_secret", "sasl_oauth_token"]:
        assert settings_module._is_sensitive(name), name
    for name in ["max_poll_records", "session_timeout_ms", "client_id", "group_id"]:
        assert not settings_module._is_sensitive(name), name


# -- the option tables match aiokafka --


@pytest.mark.parametrize(
    ("client", "options", "fields"),
    [
        (AIOKafkaConsumer, settings_module._CONSUMER_OPTIONS, ConsumerSettings._PROPERTY_FIELDS),
        (AIOKafkaProducer, settings_module._PRODUCER_OPTIONS, ProducerSettings._PROPERTY_FIELDS),
    ],
)
def test_option_tables_match_aiokafka(client, options, fields):
    params = set(inspect.signature(client).parameters)
    assert set(options) <= params
    passed = {"key_deserializer", "value_deserializer", "key_serializer", "value_serializer"}
    assert set(fields) - passed <= params
    # every option aiokafka has is reachable, except the deprecated/managed ones
    unreachable = params - set(options) - set(fields)
    assert unreachable <= {"topics", "loop", "api_version", "enable_auto_commit"}


@pytest.mark.kafka
async def test_translated_kwargs_work_with_aiokafka(kafka_bootstrap, kafka_topic):
    await produce_values(kafka_bootstrap, kafka_topic, ["a", "b"])
    consumer_settings = ConsumerSettings(
        kafka_bootstrap, auto_offset_reset="earliest"
    ).with_properties(
        {"fetch.max.wait.ms": "50", "max.poll.records": "1", "client.id": "settings-test"}
    )
    consumer = AIOKafkaConsumer(kafka_topic, **consumer_settings.to_aiokafka_kwargs())
    await consumer.start()
    try:
        first = await consumer.getmany(timeout_ms=5000)
        assert [r.value for rs in first.values() for r in rs] == [b"a"]  # max.poll.records=1
    finally:
        await consumer.stop()
    producer_settings = ProducerSettings(kafka_bootstrap).with_properties(
        {"linger.ms": "1", "batch.size": "1024", "compression.type": "gzip"}
    )
    producer = AIOKafkaProducer(**producer_settings.to_aiokafka_kwargs())
    await producer.start()
    try:
        metadata = await producer.send_and_wait(kafka_topic, b"c")
    finally:
        await producer.stop()
    assert metadata.offset == 2
    assert await read_values(kafka_bootstrap, kafka_topic, 3) == [b"a", b"b", b"c"]


# -- CommitterSettings --


def test_committer_settings():
    s = CommitterSettings()
    assert (s.max_batch, s.max_interval, s.parallelism, s.delivery) == (
        1000,
        10.0,
        1,
        "wait_for_ack",
    )
    t = (
        s.with_max_batch(5)
        .with_max_interval(0.5)
        .with_parallelism(3)
        .with_delivery("send_and_forget")
    )
    assert (t.max_batch, t.max_interval, t.parallelism, t.delivery) == (
        5,
        0.5,
        3,
        "send_and_forget",
    )
    for bad in ({"max_batch": 0}, {"max_interval": 0}, {"parallelism": 0}, {"delivery": "later"}):
        with pytest.raises(ValueError):
            CommitterSettings(**bad)


# -- Subscriptions --


def test_topic_subscriptions():
    sub = Subscriptions.topics("a", "b")
    assert isinstance(sub, TopicsSubscription) and isinstance(sub, AutoSubscription)
    assert sub.topics == ("a", "b") and sub.rebalance_listener is None
    assert Subscriptions.topics(["a", "b"]) == sub
    pattern = Subscriptions.topic_pattern(r"orders-.*")
    assert isinstance(pattern, TopicPatternSubscription) and pattern.pattern == "orders-.*"
    with pytest.raises(ValueError, match="at least one topic"):
        Subscriptions.topics()
    with pytest.raises(ValueError, match="invalid topic pattern"):
        Subscriptions.topic_pattern("(")
    with pytest.raises(dataclasses.FrozenInstanceError):
        sub.topics = ()  # type: ignore[misc]


def test_rebalance_listener_is_carried_by_copies():
    class Listener:
        def on_partitions_assigned(self, assigned):
            pass

        def on_partitions_revoked(self, revoked):
            pass

    listener = Listener()
    sub = Subscriptions.topics("a")
    with_listener = sub.with_rebalance_listener(listener)
    assert with_listener.rebalance_listener is listener and sub.rebalance_listener is None
    assert Subscriptions.topic_pattern("a.*").with_rebalance_listener(listener).rebalance_listener
    with pytest.raises(TypeError, match="rebalance listener needs"):
        sub.with_rebalance_listener(object())  # type: ignore[arg-type]


def test_manual_subscriptions():
    sub = Subscriptions.assignment(TopicPartition("a", 0), ("a", 1))
    assert isinstance(sub, AssignmentSubscription) and isinstance(sub, ManualSubscription)
    assert sub.partitions == (TopicPartition("a", 0), TopicPartition("a", 1))
    assert sub.rebalance_listener is None
    with_offsets = Subscriptions.assignment_with_offset({("a", 0): 5, TopicPartition("b", 1): 0})
    assert isinstance(with_offsets, AssignmentOffsetsSubscription)
    assert dict(with_offsets.offsets) == {TopicPartition("a", 0): 5, TopicPartition("b", 1): 0}
    assert with_offsets.partitions == (TopicPartition("a", 0), TopicPartition("b", 1))
    assert with_offsets == Subscriptions.assignment_with_offset({("a", 0): 5, ("b", 1): 0})
    hash(with_offsets)
    with pytest.raises(TypeError):
        with_offsets.offsets[TopicPartition("c", 0)] = 1  # type: ignore[index]


@pytest.mark.parametrize(
    "make",
    [
        lambda: Subscriptions.assignment(),
        lambda: Subscriptions.assignment(("a", -1)),
        lambda: Subscriptions.assignment(("", 0)),
        lambda: Subscriptions.assignment_with_offset({}),
        lambda: Subscriptions.assignment_with_offset({("a", 0): -1}),
    ],
)
def test_manual_subscription_validation(make):
    with pytest.raises(ValueError):
        make()

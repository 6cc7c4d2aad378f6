"""InitProducerId v1-v4 for aiokafka's idempotent and transactional producer.

Why: aiokafka 0.14 knows only InitProducerId **v0** (``aiokafka.protocol.transaction``
lists ``InitProducerIdRequest_v0`` alone), so its producer always sends v0, whatever
the broker offers. v0 has no ``ProducerId``/``ProducerEpoch`` fields (they came in
v3, KIP-360). The embedded broker (Tansu 0.6.0) answers a v0 request with
``UnknownError`` (-1): its storage layer looks for the producer id/epoch the request
does not carry (its log: ``tansu_storage::dynostore: producer=None epoch=None``),
while it grants one to v3/v4 requests that carry ``-1``/``-1`` (what librdkafka
sends). Apache Kafka 4.x still accepts v0 (KIP-896 removed no version of the
transaction APIs), so this only matters to brokers like Tansu; it changes nothing
for Kafka, which answers v3/v4 with a fresh producer id exactly like v0 when the
request carries ``-1``/``-1``. The whole analysis, with the requests and responses
seen on the wire, is in ``connectors/kafka/TRANSACTIONS.md``.

What: :func:`enable_init_producer_id_v4` makes *one* :class:`AIOKafkaProducer`
negotiate InitProducerId up to v4 (flexible encoding, ``ProducerId=-1``,
``ProducerEpoch=-1``): aiokafka picks the highest version both sides support from
the request structs a ``Request`` lists, and this module's request lists v0-v4.
Every other transactional request (AddPartitionsToTxn, AddOffsetsToTxn,
TxnOffsetCommit, EndTxn, FindCoordinator) keeps aiokafka's own versions, which the
embedded broker and Kafka 4.x accept.

How, and how contained: nothing global is patched. The function replaces one bound
method on one producer's sender (``producer._sender._do_init_pid``, a private
aiokafka name) with one that sends this module's request through aiokafka's own
``InitPIDHandler`` (same response handling, errors, retries). Other producers in
the process, and aiokafka's modules, are untouched.

Removal: when aiokafka lists an InitProducerId struct of version 3 or more
(:func:`aiokafka_has_init_producer_id_v3`), :func:`enable_init_producer_id_v4`
does nothing; then delete this module and its call sites.
``tests/kafka/test_transactions.py`` pins both the need (a plain transactional
aiokafka producer is refused by the embedded broker) and the fix.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from aiokafka import AIOKafkaProducer
from aiokafka.producer.sender import InitPIDHandler
from aiokafka.protocol import transaction as _transaction
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import CompactString, Int16, Int32, Int64, Schema, String, TaggedFields

__all__ = ["aiokafka_has_init_producer_id_v3", "enable_init_producer_id_v4"]

#: ProducerId / ProducerEpoch of a request that asks for a fresh producer id (v3+).
_NO_PRODUCER_ID = -1
_NO_PRODUCER_EPOCH = -1

# -- InitProducerId (api key 22) v1-v4, field for field as Kafka's
#    clients/src/main/resources/common/message/InitProducerId{Request,Response}.json:
#    v1 = v0; v2 is the first flexible version; v3 adds ProducerId/ProducerEpoch to
#    the request (KIP-360); v4 adds the PRODUCER_FENCED error code.


class InitProducerIdResponse_v1(Response):
    """Same as v0 (the broker answers before throttling)."""

    API_KEY = 22
    API_VERSION = 1
    SCHEMA = _transaction.InitProducerIdResponse_v0.SCHEMA


class InitProducerIdRequest_v1(RequestStruct):
    """Same as v0."""

    API_KEY = 22
    API_VERSION = 1
    RESPONSE_TYPE = InitProducerIdResponse_v1
    SCHEMA = Schema(("transactional_id", String("utf-8")), ("transaction_timeout_ms", Int32))


_FLEXIBLE_RESPONSE = Schema(
    ("throttle_time_ms", Int32),
    ("error_code", Int16),
    ("producer_id", Int64),
    ("producer_epoch", Int16),
    ("tags", TaggedFields),
)


class InitProducerIdResponse_v2(Response):
    """The first flexible version."""

    API_KEY = 22
    API_VERSION = 2
    SCHEMA = _FLEXIBLE_RESPONSE


class InitProducerIdResponse_v3(Response):
    """Same as v2."""

    API_KEY = 22
    API_VERSION = 3
    SCHEMA = _FLEXIBLE_RESPONSE


class InitProducerIdResponse_v4(Response):
    """Same as v3 (the error code may be PRODUCER_FENCED)."""

    API_KEY = 22
    API_VERSION = 4
    SCHEMA = _FLEXIBLE_RESPONSE


class InitProducerIdRequest_v2(RequestStruct):
    """The first flexible version (compact strings, tagged fields)."""

    FLEXIBLE_VERSION = True
    API_KEY = 22
    API_VERSION = 2
    RESPONSE_TYPE = InitProducerIdResponse_v2
    SCHEMA = Schema(
        ("transactional_id", CompactString("utf-8")),
        ("transaction_timeout_ms", Int32),
        ("tags", TaggedFields),
    )


_WITH_PRODUCER_ID = Schema(
    ("transactional_id", CompactString("utf-8")),
    ("transaction_timeout_ms", Int32),
    ("producer_id", Int64),
    ("producer_epoch", Int16),
    ("tags", TaggedFields),
)


class InitProducerIdRequest_v3(RequestStruct):
    """Adds the current ProducerId/ProducerEpoch (``-1``/``-1``: a fresh id)."""

    FLEXIBLE_VERSION = True
    API_KEY = 22
    API_VERSION = 3
    RESPONSE_TYPE = InitProducerIdResponse_v3
    SCHEMA = _WITH_PRODUCER_ID


class InitProducerIdRequest_v4(RequestStruct):
    """Same as v3; the broker may answer PRODUCER_FENCED."""

    FLEXIBLE_VERSION = True
    API_KEY = 22
    API_VERSION = 4
    RESPONSE_TYPE = InitProducerIdResponse_v4
    SCHEMA = _WITH_PRODUCER_ID


InitProducerIdRequestStruct: TypeAlias = (
    _transaction.InitProducerIdRequest_v0
    | InitProducerIdRequest_v1
    | InitProducerIdRequest_v2
    | InitProducerIdRequest_v3
    | InitProducerIdRequest_v4
)


class InitProducerIdRequest(Request[InitProducerIdRequestStruct]):
    """aiokafka's ``InitProducerIdRequest`` with versions 0-4 (it picks the highest
    version the broker supports)."""

    API_KEY = 22

    def __init__(self, transactional_id: str | None, transaction_timeout_ms: int) -> None:
        self._transactional_id = transactional_id
        self._transaction_timeout_ms = transaction_timeout_ms

    def build(
        self, request_struct_class: type[InitProducerIdRequestStruct]
    ) -> InitProducerIdRequestStruct:
        version = request_struct_class.API_VERSION
        fields: list[Any] = [self._transactional_id, self._transaction_timeout_ms]
        if version >= 3:
            fields += [_NO_PRODUCER_ID, _NO_PRODUCER_EPOCH]
        if version >= 2:
            fields.append({})  # no tagged fields
        return request_struct_class(*fields)


class _InitPIDHandler(InitPIDHandler):
    """aiokafka's handler (response handling, retries, errors) with the newer request."""

    def create_request(self) -> InitProducerIdRequest:
        txn_manager = self._sender._txn_manager
        return InitProducerIdRequest(
            txn_manager.transactional_id, txn_manager.transaction_timeout_ms
        )


def aiokafka_has_init_producer_id_v3() -> bool:
    """Whether the installed aiokafka already sends InitProducerId v3 or later."""
    request_classes: tuple[type[RequestStruct], ...] = getattr(
        _transaction.InitProducerIdRequest, "_CLASSES", ()
    )
    return any(struct.API_VERSION >= 3 for struct in request_classes)


def enable_init_producer_id_v4(producer: AIOKafkaProducer) -> None:
    """Make ``producer`` (not started yet) send InitProducerId v1-v4 when the broker has them.

    Call it between constructing the producer and ``start()``. It does nothing when
    aiokafka already sends v3+ (:func:`aiokafka_has_init_producer_id_v3`) or when
    the producer is neither idempotent nor transactional (it sends no InitProducerId).

    Raises:
        TypeError: ``producer`` is not an ``AIOKafkaProducer`` or lacks the sender
            this targets (an aiokafka version this module does not know).
    """
    if not isinstance(producer, AIOKafkaProducer):
        raise TypeError(
            "enable_init_producer_id_v4 expects an aiokafka AIOKafkaProducer, "
            f"got {type(producer).__name__}"
        )
    if aiokafka_has_init_producer_id_v3():
        return
    sender = getattr(producer, "_sender", None)
    if sender is None or not hasattr(sender, "_do_init_pid"):
        raise TypeError(
            "enable_init_producer_id_v4: this aiokafka version's producer has no "
            "_sender._do_init_pid to extend; check connectors/kafka/_compat_txn.py "
            "against the installed aiokafka"
        )
    if getattr(sender, "_txn_manager", None) is None:
        return

    async def _do_init_pid(node_id: int) -> bool:
        handler = _InitPIDHandler(sender)
        done: bool = await handler.do(node_id)
        return done

    sender._do_init_pid = _do_init_pid

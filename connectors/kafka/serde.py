"""Serializers and deserializers for Kafka keys and values.

Plain callables, the Python shape of Kafka's ``Serializer``/``Deserializer``:
a serializer turns a value into ``bytes``, a deserializer turns ``bytes`` back
into a value. Pass them to ``ProducerSettings(key_serializer=...,
value_serializer=...)`` and ``ConsumerSettings(key_deserializer=...,
value_deserializer=...)``; any other callable of the same shape works too.

``None`` passes through every function here unchanged, in both directions: a
record without a key has key ``None``, and a record whose value is ``None`` is
a tombstone (deletes the key in a compacted topic). So ``json_serializer(None)``
is ``None``, not ``b"null"``.

Errors: a serializer given a value it cannot encode raises ``TypeError``;
a deserializer given malformed bytes raises ``ValueError`` (for instance
``UnicodeDecodeError`` or ``json.JSONDecodeError``, which are subclasses). The
consumer source wraps such an error with the topic, partition and offset of the
record, and a supervision strategy on the source may resume past it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar, overload

try:
    import msgpack
except ModuleNotFoundError as _missing:  # only the msgpack serde needs it
    if _missing.name != "msgpack":
        raise

    class _MsgpackMissing:
        """Stands in for msgpack when it is not installed: using it says what to install."""

        def __getattr__(self, name: str) -> Any:
            raise ModuleNotFoundError(
                "msgpack_serializer and msgpack_deserializer need the msgpack package, which "
                "the 'kafka' extra installs: pip install 'reactive-streams-py[kafka]' (from a "
                "checkout: pip install -e '.[kafka]'), or pip install msgpack",
                name="msgpack",
            )

    msgpack = _MsgpackMissing()

__all__ = [
    "Deserializer",
    "Serializer",
    "bytes_deserializer",
    "bytes_serializer",
    "json_deserializer",
    "json_serializer",
    "msgpack_deserializer",
    "msgpack_serializer",
    "str_deserializer",
    "str_serializer",
]

T = TypeVar("T")

#: value -> bytes (``None`` -> ``None``).
Serializer: TypeAlias = Callable[[Any], bytes | None]
#: bytes -> value (``None`` -> ``None``).
Deserializer: TypeAlias = Callable[[bytes | None], Any]

_BytesLike = bytes | bytearray | memoryview


# -- bytes ---------------------------------------------------------------------


@overload
def bytes_serializer(value: None) -> None: ...
@overload
def bytes_serializer(value: _BytesLike) -> bytes: ...
def bytes_serializer(value: _BytesLike | None) -> bytes | None:
    """Pass bytes through (``bytearray`` and ``memoryview`` are copied to ``bytes``).

    Raises:
        TypeError: ``value`` is not bytes-like (a ``str`` must be encoded
            first, or use :func:`str_serializer`).
    """
    if value is None or type(value) is bytes:
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"bytes_serializer expects bytes, got {type(value).__name__}")


def bytes_deserializer(data: bytes | None) -> bytes | None:
    """Return the record's bytes unchanged."""
    return data


# -- str -----------------------------------------------------------------------


@overload
def str_serializer(value: None) -> None: ...
@overload
def str_serializer(value: str) -> bytes: ...
def str_serializer(value: str | None) -> bytes | None:
    """Encode a ``str`` as UTF-8.

    Raises:
        TypeError: ``value`` is not a ``str``.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"str_serializer expects str, got {type(value).__name__}")
    return value.encode("utf-8")


@overload
def str_deserializer(data: None) -> None: ...
@overload
def str_deserializer(data: bytes) -> str: ...
def str_deserializer(data: bytes | None) -> str | None:
    """Decode UTF-8 bytes to ``str``.

    Raises:
        UnicodeDecodeError: ``data`` is not valid UTF-8 (a ``ValueError``).
    """
    if data is None:
        return None
    return str(data, "utf-8")


# -- JSON ----------------------------------------------------------------------

_json_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def json_serializer(value: Any) -> bytes | None:
    """Encode a JSON-compatible value as compact UTF-8 JSON.

    ``None`` is a tombstone and stays ``None``; to send JSON ``null`` encode it
    yourself. NaN and infinities are refused, since other JSON readers reject
    them.

    Raises:
        TypeError: ``value`` holds something JSON cannot represent.
        ValueError: ``value`` holds a NaN or an infinity.
    """
    if value is None:
        return None
    return _json_encoder.encode(value).encode("utf-8")


def json_deserializer(data: bytes | None) -> Any:
    """Decode UTF-8 JSON bytes (``None`` stays ``None``).

    Raises:
        ValueError: ``data`` is not valid UTF-8 or not valid JSON
            (``UnicodeDecodeError`` or ``json.JSONDecodeError``).
    """
    if data is None:
        return None
    return json.loads(str(data, "utf-8"))


# -- MessagePack ---------------------------------------------------------------


def msgpack_serializer(value: Any) -> bytes | None:
    """Encode a value as MessagePack (``str`` as str, ``bytes`` as bin).

    Tuples come back as lists; maps may have any hashable keys.

    Raises:
        TypeError: ``value`` holds something MessagePack cannot represent.
    """
    if value is None:
        return None
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def msgpack_deserializer(data: bytes | None) -> Any:
    """Decode one MessagePack object (``None`` stays ``None``).

    Raises:
        ValueError: ``data`` is empty, truncated, malformed, nested too deep,
            or has bytes after the object. The message says which, how long the
            data is and how it starts (msgpack's own ``FormatError`` and
            ``StackError`` have no message at all); msgpack's exception
            (``FormatError``, ``ExtraData``, ``StackError``, all ``ValueError``
            subclasses) is the ``__cause__``.
    """
    if data is None:
        return None
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except ValueError as exc:
        raise ValueError(_msgpack_problem(data, exc)) from exc


def _msgpack_problem(data: bytes, exc: ValueError) -> str:
    if isinstance(exc, msgpack.ExtraData):
        extra = len(exc.extra) if isinstance(exc.extra, bytes | bytearray) else "some"
        what = f"{extra} bytes follow the first MessagePack object"
    elif isinstance(exc, msgpack.FormatError):
        what = "malformed: a byte that begins no MessagePack type (e.g. 0xc1)"
    elif isinstance(exc, msgpack.StackError):
        what = "nested deeper than the decoder allows"
    elif not data:
        what = "empty"
    elif "incomplete" in str(exc):
        what = "truncated: the MessagePack object is incomplete"
    else:
        what = str(exc) or type(exc).__name__
    head = bytes(data[:16])
    more = "..." if len(data) > 16 else ""
    return (
        f"msgpack_deserializer: {len(data)} bytes are not one MessagePack object: {what} "
        f"(data starts {head!r}{more}); check that the writer used msgpack_serializer, "
        "or use the deserializer that matches the topic's format"
    )

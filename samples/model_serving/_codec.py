"""Typed wrappers around msgpack (which ships no type information)."""

from __future__ import annotations

import msgpack

__all__ = ["MsgpackDecodeError", "pack", "unpack"]


class MsgpackDecodeError(Exception):
    """Raised by :func:`unpack` when the bytes are not a single valid msgpack object."""


def pack(obj: object) -> bytes:
    """Serialize ``obj`` to msgpack bytes (strings as str, floats as float64)."""
    data = msgpack.packb(obj, use_bin_type=True)
    assert isinstance(data, bytes)
    return data


def unpack(data: bytes | bytearray | memoryview) -> object:
    """Deserialize exactly one msgpack object, raising :class:`MsgpackDecodeError` on bad input."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MsgpackDecodeError(f"expected bytes, got {type(data).__name__}")
    try:
        obj: object = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except msgpack.ExtraData:
        raise MsgpackDecodeError("malformed msgpack: trailing bytes after the object") from None
    except msgpack.FormatError:
        raise MsgpackDecodeError("malformed msgpack: invalid type byte") from None
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        reason = str(exc) or type(exc).__name__
        raise MsgpackDecodeError(f"malformed msgpack: {reason}") from None
    return obj

"""Serdes: how a store turns keys and values into bytes and back.

A store keeps bytes, so two keys are the same key when their serialized bytes are equal,
and ordered scans run in the bytewise order of the serialized keys (RocksDB's default
comparator; the in-memory store uses the same order).

- :class:`MsgpackSerde` is the default for keys and values. msgpack does **not** preserve
  order: ints are encoded in forms of different lengths (``127`` is one byte, ``128`` two)
  and negative ints sort after positive ones, so a range over int keys is not a numeric
  range.
- :class:`OrderedKeySerde` is an order-preserving encoding (after FoundationDB's tuple
  layer) for keys made of ``None``, ``bytes``, ``str``, ``int``, ``float``, ``bool`` and
  tuples of them: within one type, bytewise order is Python's order (ints numerically,
  strings by code point, tuples element by element, a tuple before its extensions).
"""

from __future__ import annotations

import struct
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["Serde", "MsgpackSerde", "OrderedKeySerde"]

T = TypeVar("T")


@runtime_checkable
class Serde(Protocol[T]):
    """Turns objects into bytes and back: ``from_bytes(to_bytes(x)) == x``.

    ``to_bytes`` must be deterministic (equal objects give equal bytes): a store compares
    keys by their bytes.
    """

    def to_bytes(self, obj: T) -> bytes:
        """The bytes of ``obj``."""
        ...

    def from_bytes(self, data: bytes) -> T:
        """The object ``data`` encodes."""
        ...


def _msgpack() -> Any:
    try:
        import msgpack
    except ImportError as exc:
        raise ImportError(
            "the default store serde needs msgpack: pip install 'reactive-streams-py[state]' "
            "(or give the store a key_serde/value_serde of your own)"
        ) from exc
    return msgpack


#: The msgpack extension type code of an int outside msgpack's 64-bit range (its bytes,
#: big-endian two's complement): Python ints have no size limit, and neither do stored ones.
BIG_INT_EXT = 1


def _big_int_bytes(x: int) -> bytes:
    return x.to_bytes(x.bit_length() // 8 + 1, "big", signed=True)


class MsgpackSerde:
    """msgpack (the default): any msgpack-able value, and ints of any size (msgpack's own
    ints are 64-bit: a larger one is an extension of type :data:`BIG_INT_EXT`); tuples
    come back as lists unless ``use_list=False`` (then every array comes back as a tuple).

    Not order-preserving: see the module docstring and :class:`OrderedKeySerde`.
    """

    __slots__ = ("to_bytes", "from_bytes")

    def __init__(self, *, use_list: bool = True) -> None:
        msgpack = _msgpack()
        ext = msgpack.ExtType

        def default(obj: Any) -> Any:
            # msgpack calls this for an int out of its range and for types it cannot pack.
            if type(obj) is int:
                return ext(BIG_INT_EXT, _big_int_bytes(obj))
            raise TypeError(f"can not serialize {type(obj).__name__!r} object")

        packer = msgpack.Packer(use_bin_type=True, default=default)
        # Bound methods as attributes: the store's hot path calls them directly.
        self.to_bytes = packer.pack
        self.from_bytes = _unpackb(msgpack, use_list)

    def __repr__(self) -> str:
        return "MsgpackSerde()"


def _ext_hook(code: int, data: bytes) -> Any:
    if code == BIG_INT_EXT:
        return int.from_bytes(data, "big", signed=True)
    raise ValueError(f"MsgpackSerde: unknown msgpack extension type {code} ({data!r})")


def _unpackb(msgpack: Any, use_list: bool) -> Any:
    unpackb = msgpack.unpackb

    def from_bytes(data: bytes) -> Any:
        return unpackb(data, raw=False, use_list=use_list, strict_map_key=False, ext_hook=_ext_hook)

    return from_bytes


# -- the order-preserving key encoding -----------------------------------------------------
# Type codes, in the order the types sort (FoundationDB's tuple layer, simplified).
_NONE = 0x00
_BYTES = 0x01
_STR = 0x02
_TUPLE = 0x05
_INT_NEG_BIG = 0x0B  # a negative int longer than 8 bytes: length byte (inverted), bytes
_INT_ZERO = 0x14  # 0x0C..0x13: negative ints of 8..1 bytes, 0x15..0x1C: positive of 1..8
_INT_POS_BIG = 0x1D  # a positive int longer than 8 bytes: length byte, bytes
_FLOAT = 0x21
_FALSE = 0x26
_TRUE = 0x27
_END = 0x00  # ends a tuple (a None inside a tuple is 0x00 0xFF)


def _escape(b: bytes) -> bytes:
    return b.replace(b"\x00", b"\x00\xff") + b"\x00"


def _encode(x: Any, out: bytearray, nested: bool) -> None:
    t = type(x)
    if x is None:
        out += b"\x00\xff" if nested else b"\x00"
    elif t is bool:
        out.append(_TRUE if x else _FALSE)
    elif t is int:
        if x == 0:
            out.append(_INT_ZERO)
        elif x > 0:
            n = (x.bit_length() + 7) // 8
            b = x.to_bytes(n, "big")
            if n <= 8:
                out.append(_INT_ZERO + n)
            else:
                if n > 255:
                    raise ValueError(f"OrderedKeySerde: int too large to encode ({n} bytes)")
                out.append(_INT_POS_BIG)
                out.append(n)
            out += b
        else:
            n = ((-x).bit_length() + 7) // 8
            # One's complement: a more negative int gets smaller bytes.
            b = (x + (1 << (8 * n)) - 1).to_bytes(n, "big")
            if n <= 8:
                out.append(_INT_ZERO - n)
            else:
                if n > 255:
                    raise ValueError(f"OrderedKeySerde: int too large to encode ({n} bytes)")
                out.append(_INT_NEG_BIG)
                out.append(n ^ 0xFF)
            out += b
    elif t is str:
        out.append(_STR)
        out += _escape(x.encode("utf-8"))
    elif t is bytes:
        out.append(_BYTES)
        out += _escape(x)
    elif t is float:
        (bits,) = struct.unpack(">Q", struct.pack(">d", x))
        # Flip the sign bit of positives and every bit of negatives: bytewise order is
        # numeric order (-inf < ... < -0.0 < 0.0 < ... < inf).
        bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
        out.append(_FLOAT)
        out += bits.to_bytes(8, "big")
    elif t is tuple:
        out.append(_TUPLE)
        for item in x:
            _encode(item, out, True)
        out.append(_END)
    else:
        raise TypeError(
            f"OrderedKeySerde cannot encode {t.__name__} {x!r}: keys are None, bool, int, "
            "float, str, bytes or tuples of them"
        )


def _read_escaped(data: bytes, i: int) -> tuple[bytes, int]:
    out = bytearray()
    while True:
        j = data.index(b"\x00", i)
        out += data[i:j]
        if j + 1 < len(data) and data[j + 1] == 0xFF:
            out.append(0)
            i = j + 2
        else:
            return bytes(out), j + 1


def _decode(data: bytes, i: int, nested: bool) -> tuple[Any, int]:
    code = data[i]
    i += 1
    if code == _NONE:
        if nested:
            return None, i + 1  # skip the 0xFF
        return None, i
    if code == _BYTES:
        return _read_escaped(data, i)
    if code == _STR:
        b, i = _read_escaped(data, i)
        return b.decode("utf-8"), i
    if code == _TUPLE:
        items = []
        while data[i] != _END or (i + 1 < len(data) and data[i + 1] == 0xFF):
            item, i = _decode(data, i, True)
            items.append(item)
        return tuple(items), i + 1
    if code == _INT_ZERO:
        return 0, i
    if _INT_ZERO < code <= _INT_ZERO + 8:
        n = code - _INT_ZERO
        return int.from_bytes(data[i : i + n], "big"), i + n
    if _INT_ZERO - 8 <= code < _INT_ZERO:
        n = _INT_ZERO - code
        return int.from_bytes(data[i : i + n], "big") - (1 << (8 * n)) + 1, i + n
    if code == _INT_POS_BIG:
        n = data[i]
        return int.from_bytes(data[i + 1 : i + 1 + n], "big"), i + 1 + n
    if code == _INT_NEG_BIG:
        n = data[i] ^ 0xFF
        raw = int.from_bytes(data[i + 1 : i + 1 + n], "big")
        return raw - (1 << (8 * n)) + 1, i + 1 + n
    if code == _FLOAT:
        bits = int.from_bytes(data[i : i + 8], "big")
        bits = bits ^ (1 << 63) if bits >> 63 else bits ^ 0xFFFFFFFFFFFFFFFF
        return struct.unpack(">d", bits.to_bytes(8, "big"))[0], i + 8
    if code == _FALSE:
        return False, i
    if code == _TRUE:
        return True, i
    raise ValueError(f"OrderedKeySerde: unknown type code 0x{code:02x} at byte {i - 1}")


_STR_PREFIX = bytes((_STR,))
_FAST_INT_LIMIT = 1 << 64
_INT_PREFIXES = [bytes((_INT_ZERO + n,)) for n in range(9)]


class OrderedKeySerde:
    """An order-preserving encoding for keys: bytewise order of the encodings is Python's
    order within each type, so ranges over int, float, str or tuple keys mean what they
    say.

    Types sort in bands: ``None`` < ``bytes`` < ``str`` < tuples < ``int`` < ``float`` <
    ``False`` < ``True`` (an int and a float never compare numerically: keep one numeric
    type per key position). Tuples sort element by element, a tuple before its
    extensions: ``("a",) < ("a", 0) < ("b",)``, so the keys ``("a", ...)`` are exactly
    ``range(start=("a",), end=("a\\x00",))``. ``bool`` is its own
    type here (``True`` and ``1`` are different keys), ints of any size are supported up
    to 255 bytes.
    """

    __slots__ = ()

    def to_bytes(self, obj: Any) -> bytes:
        """The order-preserving bytes of ``obj``."""
        t = type(obj)
        # Fast paths for the common key types, the same bytes as ``_encode`` (a
        # differential property test holds them to it): a store flush encodes every key.
        if t is str:
            b: bytes = obj.encode("utf-8")
            if b"\x00" in b:
                b = b.replace(b"\x00", b"\x00\xff")
            return _STR_PREFIX + b + b"\x00"
        if t is int and 0 < obj < _FAST_INT_LIMIT:
            n: int = (obj.bit_length() + 7) // 8
            raw: bytes = obj.to_bytes(n, "big")
            return _INT_PREFIXES[n] + raw
        out = bytearray()
        _encode(obj, out, False)
        return bytes(out)

    def from_bytes(self, data: bytes) -> Any:
        """The key ``data`` encodes."""
        if data[:1] == _STR_PREFIX and data.find(b"\x00") == len(data) - 1:
            return data[1:-1].decode("utf-8")  # a str without escapes (fast path)
        value, i = _decode(data, 0, False)
        if i != len(data):
            raise ValueError(f"OrderedKeySerde: {len(data) - i} trailing bytes")
        return value

    def __repr__(self) -> str:
        return "OrderedKeySerde()"

"""connectors.kafka.serde: round trips, tombstones, error types."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.kafka.serde import (
    bytes_deserializer,
    bytes_serializer,
    json_deserializer,
    json_serializer,
    msgpack_deserializer,
    msgpack_serializer,
    str_deserializer,
    str_serializer,
)

PAIRS = [
    (bytes_serializer, bytes_deserializer),
    (str_serializer, str_deserializer),
    (json_serializer, json_deserializer),
    (msgpack_serializer, msgpack_deserializer),
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@pytest.mark.parametrize(("serialize", "deserialize"), PAIRS)
def test_none_passes_through_both_ways(serialize, deserialize):
    assert serialize(None) is None
    assert deserialize(None) is None


@given(st.binary())
def test_bytes_round_trip(data):
    assert bytes_deserializer(bytes_serializer(data)) == data


def test_bytes_serializer_copies_bytes_like_to_bytes():
    assert bytes_serializer(bytearray(b"ab")) == b"ab"
    assert type(bytes_serializer(memoryview(b"ab"))) is bytes


def test_bytes_serializer_refuses_str():
    with pytest.raises(TypeError, match="bytes_serializer expects bytes, got str"):
        bytes_serializer("text")


@given(st.text())
def test_str_round_trip(text):
    assert str_deserializer(str_serializer(text)) == text


def test_str_is_utf8():
    assert str_serializer("é€") == "é€".encode()
    assert str_deserializer(b"\xc3\xa9") == "é"


def test_str_serializer_refuses_non_str():
    with pytest.raises(TypeError, match="str_serializer expects str, got int"):
        str_serializer(1)


def test_str_deserializer_invalid_utf8_is_a_value_error():
    with pytest.raises(UnicodeDecodeError):
        str_deserializer(b"\xff\xfe")
    with pytest.raises(ValueError):
        str_deserializer(b"\xc3")


@given(json_values.filter(lambda v: v is not None))
def test_json_round_trip(value):
    assert json_deserializer(json_serializer(value)) == value


def test_json_is_compact_utf8():
    assert json_serializer({"a": [1, "é"]}) == '{"a":[1,"é"]}'.encode()


def test_json_tombstone_is_none_not_null():
    assert json_serializer(None) is None
    assert json_deserializer(b"null") is None


def test_json_serializer_refuses_what_json_cannot_hold():
    with pytest.raises(TypeError):
        json_serializer({1, 2})
    with pytest.raises(ValueError):
        json_serializer(float("nan"))


@pytest.mark.parametrize("data", [b"{", b"not json", b'{"a":}', b"\xff"])
def test_json_deserializer_malformed_is_a_value_error(data):
    with pytest.raises(ValueError):
        json_deserializer(data)


def test_json_decode_error_is_the_json_one():
    with pytest.raises(json.JSONDecodeError):
        json_deserializer(b"[1,")


msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary(),
    lambda children: (
        st.lists(children) | st.dictionaries(st.text() | st.integers(-100, 100), children)
    ),
    max_leaves=20,
)


@given(msgpack_values.filter(lambda v: v is not None))
def test_msgpack_round_trip(value):
    assert msgpack_deserializer(msgpack_serializer(value)) == value


def test_msgpack_keeps_str_and_bytes_apart():
    assert msgpack_deserializer(msgpack_serializer(["a", b"a"])) == ["a", b"a"]


def test_msgpack_tuples_come_back_as_lists():
    assert msgpack_deserializer(msgpack_serializer((1, 2))) == [1, 2]


def test_msgpack_serializer_refuses_unknown_types():
    with pytest.raises(TypeError):
        msgpack_serializer(object())


@pytest.mark.parametrize("data", [b"", b"\x92\x01", b"\xc1", b"\x01\x02", b"\xa3\xff\xfe\xfd"])
def test_msgpack_deserializer_malformed_is_a_value_error(data):
    with pytest.raises(ValueError):
        msgpack_deserializer(data)

"""``Framing.simple_framing_protocol`` (a BidiFlow: 4-byte big-endian length header out,
stripped in), its encoder and decoder, and ``Framing.length_field(compute_frame_size=...)``
(Akka's ``computeFrameSize``), on real bytes cut at every chunk boundary, and over a
real TCP connection on loopback."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import BidiFlow, Flow, Keep, Materializer, NotUsed, Sink, Source
from reactive.io import Framing, FramingError, IncomingConnection, Tcp

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given positions (any order; duplicates give empty chunks)."""
    points = sorted(c % (len(data) + 1) for c in cuts)
    chunks, last = [], 0
    for p in points:
        chunks.append(data[last:p])
        last = p
    chunks.append(data[last:])
    return chunks


def header(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


async def run(
    chunks: list[Any], flow: Flow[Any, Any, Any], fast_paths: bool = True
) -> tuple[list[Any], BaseException | None]:
    """What ``flow`` emitted for ``chunks``, and its failure (or None)."""
    out: list[Any] = []
    async with Materializer(fast_paths=fast_paths) as mat:
        done = Source.from_iterable(chunks).via(flow).run_with(Sink.foreach(out.append), mat)
        try:
            await done
        except Exception as e:  # the failure is what is checked
            return out, e
    return out, None


# -- the encoder ----------------------------------------------------------------------------
async def test_encoder_prepends_a_four_byte_big_endian_length() -> None:
    msgs = [b"hello", b"", b"\x00" * 300]
    out, err = await run(msgs, Framing.simple_framing_protocol_encoder(1000))
    assert err is None
    assert out == [b"\x00\x00\x00\x05hello", b"\x00\x00\x00\x00", b"\x00\x00\x01\x2c" + msgs[2]]


async def test_encoder_fails_on_a_message_over_the_limit_after_the_ones_before() -> None:
    out, err = await run([b"ok", b"x" * 11, b"never"], Framing.simple_framing_protocol_encoder(10))
    assert out == [header(b"ok")]
    assert isinstance(err, FramingError)
    msg = str(err)
    assert "[Framing.simple_framing_protocol_encoder]" in msg
    assert "11 bytes" in msg and "maximum_message_length=10" in msg


async def test_encoder_refuses_what_is_not_bytes() -> None:
    out, err = await run([b"a", "text"], Framing.simple_framing_protocol_encoder(10))
    assert out == [header(b"a")]
    assert isinstance(err, TypeError)
    assert "simple_framing_protocol_encoder" in str(err) and "str" in str(err)


# -- the decoder ----------------------------------------------------------------------------
@SETTINGS
@given(
    msgs=st.lists(st.binary(max_size=40), max_size=12),
    cuts=st.lists(st.integers(0, 10_000), max_size=15),
)
async def test_decoder_gets_every_message_back_however_the_chunks_fall(
    msgs: list[bytes], cuts: list[int]
) -> None:
    data = b"".join(header(m) for m in msgs)
    for fast_paths in (True, False):
        out, err = await run(
            split(data, cuts), Framing.simple_framing_protocol_decoder(40), fast_paths
        )
        assert err is None
        assert out == msgs


async def test_decoder_at_every_single_cut_and_byte_by_byte() -> None:
    msgs = [b"first", b"", b"a longer third message", b"4"]
    data = b"".join(header(m) for m in msgs)
    decoder = Framing.simple_framing_protocol_decoder(64)
    for cut in range(len(data) + 1):
        assert await run([data[:cut], data[cut:]], decoder) == (msgs, None)
    assert await run([data[i : i + 1] for i in range(len(data))], decoder) == (msgs, None)


async def test_decoder_fails_on_a_header_over_the_limit() -> None:
    data = header(b"ok") + header(b"y" * 9) + header(b"z")
    out, err = await run([data], Framing.simple_framing_protocol_decoder(8))
    assert out == [b"ok"]
    assert isinstance(err, FramingError)
    msg = str(err)
    assert "[Framing.simple_framing_protocol_decoder]" in msg
    assert "stream byte 6" in msg and "13 bytes" in msg and "maximum_message_length=8" in msg


async def test_decoder_fails_on_a_truncated_stream_at_completion() -> None:
    data = header(b"whole") + header(b"cut short")[:-3]
    out, err = await run(split(data, [4, 11, 15]), Framing.simple_framing_protocol_decoder(64))
    assert out == [b"whole"]
    assert isinstance(err, FramingError)
    assert "the stream ended inside a frame" in str(err)
    assert "stream byte 9" in str(err)
    # a header cut inside its four bytes is truncated too
    out, err = await run([header(b"a") + b"\x00\x00"], Framing.simple_framing_protocol_decoder(8))
    assert out == [b"a"] and isinstance(err, FramingError)


# -- the BidiFlow ---------------------------------------------------------------------------
async def test_protocol_round_trip_through_a_chunking_wire() -> None:
    protocol = Framing.simple_framing_protocol(100)
    assert isinstance(protocol, BidiFlow)
    # the wire re-cuts the byte stream into chunks of 3 bytes
    wire = Flow[bytes]().map_concat(lambda b: list(b)).grouped(3).map(bytes)
    msgs = [b"alpha", b"", b"b" * 100, b"gamma"]
    out, err = await run(msgs, protocol.join(wire))
    assert err is None
    assert out == msgs


async def test_protocol_limit_applies_on_the_way_out_and_in() -> None:
    protocol = Framing.simple_framing_protocol(4)
    out, err = await run([b"1234", b"12345"], protocol.join(Flow[bytes]()))
    assert out == [b"1234"]
    assert isinstance(err, FramingError) and "simple_framing_protocol_encoder" in str(err)
    # inbound: a peer sending a bigger message than we accept
    server = Flow[bytes]().join(protocol)  # messages in -> handler -> messages out
    out, err = await run([header(b"12") + header(b"123456")], server)
    assert out == [header(b"12")]
    assert isinstance(err, FramingError) and "simple_framing_protocol_decoder" in str(err)


async def test_protocol_over_a_real_tcp_connection(materializer: Materializer) -> None:
    protocol = Framing.simple_framing_protocol(1 << 16)
    handler = Flow[bytes]().map(lambda m: m[::-1])  # answers each message reversed

    def handle(conn: IncomingConnection) -> None:
        conn.handle_with(handler.join(protocol), materializer)

    binding = await Tcp.bind("127.0.0.1", 0).to(Sink.foreach(handle)).run(materializer)
    try:
        port = binding.local_address[1]
        msgs = [b"m%d-" % i + b"x" * (i * 997 % 5000) for i in range(40)]
        client = protocol.join(Tcp.outgoing_connection("127.0.0.1", port))
        got = (
            Source.from_iterable(msgs)
            .via(client)
            .take(len(msgs))
            .run_with(Sink.seq(), materializer)
        )
        assert await got == [m[::-1] for m in msgs]
    finally:
        await binding.unbind()


def test_protocol_arguments_are_checked() -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="maximum_message_length"):
            Framing.simple_framing_protocol(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="4-byte header"):
        Framing.simple_framing_protocol_encoder(2**32)
    with pytest.raises(ValueError, match="simple_framing_protocol_decoder"):
        Framing.simple_framing_protocol_decoder(0)


# -- length_field(compute_frame_size=...) ----------------------------------------------------
def with_footer(offset_bytes: bytes, length: int) -> int:
    """Frames ``[kind: 1][length: 2 LE][body][footer of `kind` bytes]``."""
    return len(offset_bytes) + 2 + length + offset_bytes[0]


def frame_with_footer(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(2, "little") + body + b"F" * kind


@SETTINGS
@given(
    frames=st.lists(st.tuples(st.integers(0, 5), st.binary(max_size=20)), max_size=10),
    cuts=st.lists(st.integers(0, 10_000), max_size=15),
)
async def test_compute_frame_size_frames_a_footer_layout(
    frames: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    encoded = [frame_with_footer(k, b) for k, b in frames]
    data = b"".join(encoded)
    flow = Framing.length_field(2, 1, 100, "little", compute_frame_size=with_footer)
    for fast_paths in (True, False):
        out, err = await run(split(data, cuts), flow, fast_paths)
        assert err is None
        assert out == encoded


async def test_compute_frame_size_gets_the_offset_bytes_and_the_length_once_per_frame() -> None:
    calls: list[tuple[bytes, int]] = []

    def size(offset_bytes: bytes, length: int) -> int:
        calls.append((offset_bytes, length))
        return 4 + length

    data = b"ab\x00\x03xyz" + b"cd\x00\x01q"
    flow = Framing.length_field(2, 2, 100, "big", compute_frame_size=size)
    out, err = await run([data[i : i + 1] for i in range(len(data))], flow)
    assert err is None
    assert out == [b"ab\x00\x03xyz", b"cd\x00\x01q"]
    assert calls == [(b"ab", 3), (b"cd", 1)]


async def test_compute_frame_size_limits_and_errors() -> None:
    # over the maximum (header included)
    flow = Framing.length_field(
        1, 0, 10, compute_frame_size=lambda o, n: 1 + n if n < 5 else n * 100
    )
    out, err = await run([b"\x00\x07xyz"], flow)
    assert out == [b"\x00"]  # the empty frame: just its header
    assert isinstance(err, FramingError) and "700 bytes" in str(err)
    assert "stream byte 1" in str(err)
    assert "maximum_frame_length=10" in str(err)
    # shorter than the header
    flow = Framing.length_field(2, 1, 10, compute_frame_size=lambda o, n: 2)
    out, err = await run([b"\x00\x00\x00"], flow)
    assert out == [] and isinstance(err, FramingError)
    assert "less than its header" in str(err) and "= 3" in str(err)

    # a raising function fails the stream with its exception, after the frames before
    class Bad(Exception):
        pass

    def bad(o: bytes, n: int) -> int:
        if n == 9:
            raise Bad("no")
        return 1 + n

    flow = Framing.length_field(1, 0, 20, compute_frame_size=bad)
    out, err = await run([b"\x01a\x09"], flow)
    assert out == [b"\x01a"] and isinstance(err, Bad)
    # a result that is no int
    flow = Framing.length_field(1, 0, 20, compute_frame_size=lambda o, n: "3")  # type: ignore[arg-type, return-value]
    out, err = await run([b"\x01a"], flow)
    assert isinstance(err, TypeError) and "compute_frame_size must return an int" in str(err)
    with pytest.raises(TypeError, match="compute_frame_size must be a function"):
        Framing.length_field(1, compute_frame_size=3)  # type: ignore[arg-type]


async def test_truncated_frame_with_compute_frame_size_fails_at_completion() -> None:
    data = frame_with_footer(2, b"body") + frame_with_footer(3, b"cut")[:-1]
    flow = Framing.length_field(2, 1, 100, "little", compute_frame_size=with_footer)
    out, err = await run(split(data, [5, 12]), flow)
    assert out == [frame_with_footer(2, b"body")]
    assert isinstance(err, FramingError) and "the stream ended inside a frame" in str(err)


async def test_protocol_materializes_not_used(materializer: Materializer) -> None:
    protocol = Framing.simple_framing_protocol(8)
    joined = protocol.join_mat(Flow[bytes]().map_materialized_value(lambda _: 7), Keep.both)
    value, out = (
        Source.single(b"m")
        .via_mat(joined, Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert value == (NotUsed, 7)
    assert await out == [b"m"]

"""Framing, lines and JSON object framing: random payloads split at random chunk
boundaries reframe exactly as a plain-Python reference does; over-long and truncated
frames, bad bytes and malformed JSON fail with an error naming the limit and the
position, after the good frames before them were emitted."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import Flow, Materializer, Sink, Source
from reactive.io import Framing, FramingError, JsonFraming, PartialObjectError
from reactive.io.framing import _all_within
from reactive.testkit import TestSink, TestSource

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given positions (any order, duplicates give empty chunks)."""
    points = sorted(c % (len(data) + 1) for c in cuts)
    chunks, last = [], 0
    for p in points:
        chunks.append(data[last:p])
        last = p
    chunks.append(data[last:])
    return chunks


async def frame(
    chunks: list[bytes], flow: Flow[Any, Any, Any]
) -> tuple[list[Any], BaseException | None]:
    """Run the chunks through ``flow``: what it emitted, and how it failed (or None).
    Runs with the fast paths (frames handed over in batches) and without; both must
    agree."""
    results = []
    for fast_paths in (True, False):
        out: list[Any] = []
        err: BaseException | None = None
        async with Materializer(fast_paths=fast_paths) as mat:
            done = Source.from_iterable(chunks).via(flow).run_with(Sink.foreach(out.append), mat)
            try:
                await done
            except FramingError as e:
                err = e
        results.append((out, err))
    (fast, fast_err), (slow, slow_err) = results
    assert fast == slow
    assert repr(fast_err) == repr(slow_err)
    return fast, fast_err


def delimiter_reference(
    data: bytes, d: bytes, mx: int, allow_truncation: bool
) -> tuple[list[bytes], bool]:
    """Frames expected before the first error, and whether there is an error."""
    parts = data.split(d)
    rest = parts.pop()
    out = []
    for p in parts:
        if len(p) > mx:
            return out, True
        out.append(p)
    if rest:
        if not allow_truncation or len(rest) > mx:
            return out, True
        out.append(rest)
    return out, False


CUTS = st.lists(st.integers(0, 10_000), max_size=12)


@SETTINGS
@given(
    frames=st.lists(st.binary(max_size=12), max_size=15),
    d=st.sampled_from([b"\n", b"\r\n", b"||", b"abc"]),
    tail=st.binary(max_size=6),
    mx=st.integers(1, 14),
    allow_truncation=st.booleans(),
    cuts=CUTS,
)
async def test_delimiter_reframes_like_split(
    frames: list[bytes],
    d: bytes,
    tail: bytes,
    mx: int,
    allow_truncation: bool,
    cuts: list[int],
) -> None:
    data = b"".join(f + d for f in frames) + tail
    expected, fails = delimiter_reference(data, d, mx, allow_truncation)
    out, err = await frame(split(data, cuts), Framing.delimiter(d, mx, allow_truncation))
    assert out == expected
    assert (err is not None) == fails, err


def delimiter_reference_error(
    data: bytes, d: bytes, mx: int, allow_truncation: bool
) -> tuple[list[bytes], str | None]:
    """A plain splitter: the frames before the first error, and the words the error
    must contain (the limit and the stream byte position of the bad frame), or None."""
    parts = data.split(d)
    rest = parts.pop()
    out, pos = [], 0
    for p in parts:
        if len(p) > mx:
            return out, f"starting at stream byte {pos} is longer than maximum_frame_length={mx}"
        out.append(p)
        pos += len(p) + len(d)
    if rest:
        if len(rest) > mx + len(d) - 1 or (allow_truncation and len(rest) > mx):
            return out, f"starting at stream byte {pos} is longer than maximum_frame_length={mx}"
        if not allow_truncation:
            return out, f"the stream ended inside a frame: {len(rest)} bytes from stream byte {pos}"
        out.append(rest)
    return out, None


@st.composite
def many_frames(draw: st.DrawFn, d: bytes, mx: int) -> bytes:
    """Many short frames (so the delimiter search by windows is taken), made of bytes
    of the delimiter and one other byte (so partial delimiters abound), with maybe
    one frame of about the limit among them, and maybe a last frame without delimiter."""
    alphabet = [*sorted(set(d)), ord("x")]
    frame = st.lists(st.sampled_from(alphabet), max_size=6).map(bytes)
    frames = draw(st.lists(frame, min_size=1, max_size=300))
    if draw(st.booleans()):
        size = draw(st.integers(max(0, mx - 2), mx + 3))
        frames.insert(draw(st.integers(0, len(frames))), b"x" * size)
    tail = draw(st.sampled_from([b"", b"x", b"x" * mx, b"x" * (mx + 1), d[:-1]]))
    return b"".join(f + d for f in frames) + tail


@SETTINGS
@given(
    case=st.sampled_from([b"\n", b"\r\n", b"ab", b"aba", b"\x00\x00", b"xyz"]).flatmap(
        lambda d: st.tuples(
            st.just(d),
            st.integers(1, 120).flatmap(lambda mx: st.tuples(st.just(mx), many_frames(d, mx))),
        )
    ),
    allow_truncation=st.booleans(),
    cuts=st.lists(st.integers(0, 100_000), max_size=6),
)
async def test_delimiter_fast_split_matches_a_reference_splitter(
    case: tuple[bytes, tuple[int, bytes]], allow_truncation: bool, cuts: list[int]
) -> None:
    """Differential test of the delimiter framing's fast paths (whole chunks split in C,
    maximum length checked by windows, frames handed on in batches) against a plain
    splitter: random chunk boundaries, delimiters of 1-3 bytes that overlap themselves,
    frames of about the maximum length, a truncated last frame. Same frames, and the
    same error at the same stream byte position."""
    d, (mx, data) = case
    expected, error = delimiter_reference_error(data, d, mx, allow_truncation)
    out, err = await frame(split(data, cuts), Framing.delimiter(d, mx, allow_truncation))
    assert out == expected
    if error is None:
        assert err is None
    else:
        assert err is not None and error in str(err), (error, err)
        assert str(err).startswith("[Framing.delimiter] ")


@pytest.mark.parametrize("d", [b"\n", b"ab", b"aaa"])
def test_window_check_of_the_maximum_length_is_exact(d: bytes) -> None:
    """The check by windows (by jumps from frame to frame for a one-byte delimiter) says
    "all frames within the limit" exactly when the longest frame is: every limit, a
    frame of every length around it at every alignment."""
    checked = 0
    for mx in range(1, 40):
        w = (mx + 2) // 2
        for size in range(max(0, mx - 2), mx + 3):
            for offset in range(w + 2):
                data = d * (offset + 4 * mx) + b"x" * size + d * (4 * mx)
                parts = data.split(d)
                parts.pop()
                end = len(data) - len(d)
                assert _all_within(data, d, mx, end, parts) == (size <= mx), (mx, size, offset)
                checked += 1
    assert checked > 2000


@SETTINGS
@given(
    lines=st.lists(
        st.text(
            alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\n\r"),
            max_size=8,
        )
    ),
    crlf=st.booleans(),
    last_newline=st.booleans(),
    cuts=CUTS,
)
async def test_lines_decode_like_a_text_file(
    lines: list[str], crlf: bool, last_newline: bool, cuts: list[int]
) -> None:
    nl = "\r\n" if crlf else "\n"
    text = nl.join(lines) + (nl if last_newline and lines else "")
    data = text.encode()  # multi-byte characters get cut between chunks
    out, err = await frame(split(data, cuts), Framing.lines(100))
    assert err is None
    # what iterating the text as a file (universal newlines) gives
    assert out == [line.rstrip("\n") for line in io.StringIO(text, newline=None)]


def length_frame(payload: bytes, field_length: int, offset: int, order: Any) -> bytes:
    return b"\x07" * offset + len(payload).to_bytes(field_length, order) + payload


@SETTINGS
@given(
    payloads=st.lists(st.binary(max_size=300), max_size=10),
    field_length=st.integers(2, 4),
    offset=st.integers(0, 3),
    order=st.sampled_from(["little", "big"]),
    cuts=CUTS,
)
async def test_length_field_reframes(
    payloads: list[bytes], field_length: int, offset: int, order: Any, cuts: list[int]
) -> None:
    frames = [length_frame(p, field_length, offset, order) for p in payloads]
    data = b"".join(frames)
    flow = Framing.length_field(field_length, offset, 400, order)
    out, err = await frame(split(data, cuts), flow)
    assert err is None
    assert out == frames


@SETTINGS
@given(payloads=st.lists(st.binary(max_size=30), max_size=10), cuts=CUTS)
async def test_length_field_one_byte_and_oversize(payloads: list[bytes], cuts: list[int]) -> None:
    frames = [length_frame(p, 1, 0, "little") for p in payloads]
    data = b"".join(frames)
    out, err = await frame(split(data, cuts), Framing.length_field(1, maximum_frame_length=21))
    good = []
    for f in frames:
        if len(f) > 21:
            break
        good.append(f)
    assert out == good
    assert (err is not None) == (len(good) < len(frames))


# Text that encodes to UTF-8 (no lone surrogates).
TEXT = st.characters(exclude_categories=["Cs"])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(TEXT, max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(TEXT, max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)
JSON_OBJECTS = st.dictionaries(st.text(TEXT, max_size=5), JSON_VALUES, max_size=4)


@SETTINGS
@given(
    objects=st.lists(JSON_OBJECTS, max_size=8),
    layout=st.sampled_from(["lines", "array", "commas", "packed"]),
    ascii_only=st.booleans(),
    cuts=CUTS,
)
async def test_json_objects_reframe(
    objects: list[dict[str, Any]], layout: str, ascii_only: bool, cuts: list[int]
) -> None:
    texts = [json.dumps(o, ensure_ascii=ascii_only) for o in objects]
    sep = {"lines": "\n", "array": ", ", "commas": ",\r\n\t", "packed": ""}[layout]
    doc = sep.join(texts)
    if layout == "array":
        doc = f" [ {doc} ]\n"
    out, err = await frame(split(doc.encode(), cuts), JsonFraming.object_scanner(10_000))
    assert err is None
    assert [json.loads(x) for x in out] == objects
    assert [x.decode() for x in out] == texts  # exactly the object's bytes


# -- errors ----------------------------------------------------------------------------
async def test_delimiter_oversize_names_limit_and_position() -> None:
    out, err = await frame(
        [b"ok\nfine\n", b"0123456", b"789abc\nlater\n"], Framing.delimiter(b"\n", 10)
    )
    assert out == [b"ok", b"fine"]
    assert isinstance(err, FramingError)
    assert "maximum_frame_length=10" in str(err)
    assert "stream byte 8" in str(err)
    assert "Framing.delimiter" in str(err)


async def test_delimiter_fails_before_the_delimiter_arrives(materializer: Materializer) -> None:
    """An over-long frame fails as soon as it is certain, without buffering the rest."""
    pub, sub = (
        TestSource.probe()
        .via(Framing.delimiter(b"\r\n", 4))
        .to_mat(TestSink.probe(), lambda a, b: (a, b))
        .run(materializer)
    )
    sub.request(1)
    await pub.expect_request()
    pub.send_next(b"abcd\r")  # could still be a 4-byte frame
    await pub.expect_request()
    pub.send_next(b"x")  # no: 5 bytes before any possible delimiter
    err = await sub.expect_error()
    assert "maximum_frame_length=4" in str(err) and "stream byte 0" in str(err)
    await pub.expect_cancellation()


async def test_truncated_last_frame_fails_unless_allowed() -> None:
    out, err = await frame([b"a\nb", b"cd"], Framing.delimiter(b"\n", 10))
    assert out == [b"a"]
    assert isinstance(err, FramingError)
    assert "allow_truncation=False" in str(err) and "stream byte 2" in str(err)
    out, err = await frame([b"a\nb", b"cd"], Framing.delimiter(b"\n", 10, allow_truncation=True))
    assert (out, err) == ([b"a", b"bcd"], None)


async def test_truncated_frame_over_the_limit_fails_even_when_allowed() -> None:
    out, err = await frame([b"a\n", b"abcdef"], Framing.delimiter(b"\n", 5, True))
    assert out == [b"a"] and isinstance(err, FramingError)
    assert "maximum_frame_length=5" in str(err)


async def test_length_field_truncated_and_oversize_name_positions() -> None:
    out, err = await frame([b"\x01\x00a\x03\x00ab"], Framing.length_field(2))
    assert out == [b"\x01\x00a"]
    assert isinstance(err, FramingError)
    assert "stream byte 3" in str(err) and "ended inside a frame" in str(err)
    out, err = await frame(
        [b"\x01\x00a", b"\xff\x00"], Framing.length_field(2, maximum_frame_length=100)
    )
    assert out == [b"\x01\x00a"]
    assert isinstance(err, FramingError)
    assert "257 bytes" in str(err) and "maximum_frame_length=100" in str(err)
    assert "stream byte 3" in str(err)


async def test_lines_bad_encoding_and_long_line() -> None:
    out, err = await frame([b"ok\n", b"bad \xff\n"], Framing.lines(50))
    assert out == ["ok"]
    assert isinstance(err, FramingError)
    assert "not valid utf-8" in str(err) and "stream byte 7" in str(err)
    out, err = await frame([b"abc\r\n", b"abcd\r\n"], Framing.lines(3))
    assert out == ["abc"]
    assert isinstance(err, FramingError) and "maximum_line_length=3" in str(err)
    out, err = await frame([b"x\n", b"tail"], Framing.lines(9, allow_truncation=False))
    assert out == ["x"] and isinstance(err, FramingError)


@pytest.mark.parametrize(
    ("chunks", "emitted", "message"),
    [
        ([b'{"a":1} x {"b":2}'], [b'{"a":1}'], "invalid JSON at stream byte 8"),
        ([b'{"a":1}', b"}"], [b'{"a":1}'], "invalid JSON at stream byte 7"),
        ([b'{"a":"}', b'"}', b' "str"'], [b'{"a":"}"}'], "invalid JSON at stream byte 10"),
    ],
)
async def test_json_malformed_input(
    chunks: list[bytes], emitted: list[bytes], message: str
) -> None:
    out, err = await frame(chunks, JsonFraming.object_scanner(100))
    assert out == emitted
    assert isinstance(err, FramingError) and message in str(err)


async def test_json_partial_and_oversize_objects() -> None:
    out, err = await frame([b'{"a":1}\n{"b": {"c": "\\"}'], JsonFraming.object_scanner(100))
    assert out == [b'{"a":1}']
    assert isinstance(err, PartialObjectError) and "stream byte 8" in str(err)
    obj = b'{"k": "' + b"x" * 20 + b'"}'  # 29 bytes
    out, err = await frame([b"{}", obj[:10], obj[10:]], JsonFraming.object_scanner(29))
    assert (out, err) == ([b"{}", obj], None)
    out, err = await frame([b"{}", obj[:10], obj[10:]], JsonFraming.object_scanner(28))
    assert out == [b"{}"]
    assert isinstance(err, FramingError)
    assert "maximum_object_length=28" in str(err) and "stream byte 2" in str(err)


async def test_non_bytes_element_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"\[Framing.delimiter\] expects bytes-like.*str"):
        await Source.single("text\n").via(Framing.delimiter(b"\n", 9)).run_with(Sink.seq())


def test_bad_arguments_are_rejected_when_building() -> None:
    with pytest.raises(ValueError, match="delimiter must be non-empty"):
        Framing.delimiter(b"", 10)
    with pytest.raises(ValueError, match="maximum_frame_length"):
        Framing.delimiter(b"\n", 0)
    with pytest.raises(ValueError, match="field_length must be 1, 2, 3 or 4"):
        Framing.length_field(5)
    with pytest.raises(ValueError, match="byte_order"):
        Framing.length_field(2, byte_order="middle")  # type: ignore[arg-type]
    with pytest.raises(LookupError):
        Framing.lines(10, encoding="no-such-codec")


async def test_backpressure_one_frame_per_pull(materializer: Materializer) -> None:
    """Frames of one chunk go out one per request, and the upstream completion waits
    for them: the truncated frame after them fails the stream only then."""
    pub, sub = (
        TestSource.probe()
        .via(Framing.delimiter(b",", 9))
        .to_mat(TestSink.probe(), lambda a, b: (a, b))
        .run(materializer)
    )
    sub.request(1)
    await pub.expect_request()
    pub.send_next(b"a,b,c")
    assert await sub.expect_next() == b"a"
    pub.send_complete()
    sub.request(5)
    assert await sub.expect_next() == b"b"
    err = await sub.expect_error()
    assert "ended inside a frame" in str(err) and "stream byte 4" in str(err)


async def test_cancellation_reaches_upstream(materializer: Materializer) -> None:
    pub, sub = (
        TestSource.probe()
        .via(JsonFraming.object_scanner(9))
        .to_mat(TestSink.probe(), lambda a, b: (a, b))
        .run(materializer)
    )
    sub.request(1)
    await pub.expect_request()
    sub.cancel()
    await pub.expect_cancellation()

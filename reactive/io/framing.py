"""Framing: cut a stream of byte chunks into frames, wherever the chunk boundaries fall.

Akka's ``Framing`` and ``JsonFraming`` (``scaladsl.Framing``, ``impl.JsonObjectParser``):
pure flows over ``bytes``, independent of where the bytes come from (a file, a socket, a
decompressor). Chunk boundaries never change the frames: the frames of a byte stream are
the same however it was split. ``Framing.simple_framing_protocol`` is a ``BidiFlow``: a
4-byte big-endian length header added on the way out, stripped on the way in.

Errors are ``FramingError`` (Akka's ``FramingException``) and name the operator, the
limit and the absolute byte position in the stream. Frames found before the bad one are
emitted first; nothing is dropped silently.
"""

from __future__ import annotations

import abc
import re
from typing import TYPE_CHECKING, Any, Literal

from .._dsl.bidi import BidiFlow
from .._dsl.blueprints import Flow
from .._stage.logic import _Batch
from ._stages import (
    ByteFlowLogic,
    ByteFlowStage,
    require_bytes,
    require_positive_int,
)
from .errors import FramingError, PartialObjectError

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._keep import NotUsedType
    from ..stage import FlowShape

__all__ = ["Framing", "JsonFraming"]

ByteOrder = Literal["little", "big"]


class _FramingLogic(ByteFlowLogic, abc.ABC):
    """Parses each chunk into a queue of complete frames and pushes one per pull (a batch
    of up to the demand on a batch connection).

    Invariant: upstream is pulled only when the queue is empty and downstream has
    demand, so at most one chunk's worth of frames is buffered. A parse error found in a
    chunk is kept in ``error`` and signalled after the frames before it were emitted.
    """

    OP = "Framing"

    def __init__(self, shape: FlowShape) -> None:
        super().__init__(shape)
        self.frames: list[Any] = []  # parsed, not emitted yet: frames[head:]
        self.head = 0
        self._batch_out = (self.out,)  # see on_pull
        self.error: BaseException | None = None
        self.consumed = 0  # bytes received so far (for type errors)

    @abc.abstractmethod
    def parse(self, chunk: bytes) -> None:
        """Append ``chunk``, queue the frames it completes, or set ``error``."""

    def finish(self) -> None:
        """Upstream completed: queue a last frame, or set ``error`` (truncation)."""

    def on_push(self) -> None:
        chunk = require_bytes(self.OP, self.grab(self.in_), self.consumed)
        self.consumed += len(chunk)
        self.parse(chunk)
        self.on_pull()

    def on_pull(self) -> None:
        frames = self.frames
        head = self.head
        size = len(frames)
        if head < size:
            # Fast path (the runtime's batch protocol, as Source.from_iterable's): when
            # downstream takes batches, hand it up to its demand of frames in one push.
            c = self._conns[self.out]
            n = c.demand_n
            if n > 1 and c.batch and size - head > 1:
                # Each frame copied once into the batch where a slice would add a
                # second copy: the rest of the queue, or most of it (copied whole, then
                # trimmed); a small part of it is sliced.
                if head + n >= size:
                    x: Any = _Batch(frames[head:] if head else frames)
                    self.frames = []
                    self.head = 0
                elif head or n * 2 < size:
                    x = _Batch(frames[head : head + n])
                    self.head = head + n
                else:
                    x = _Batch(frames)
                    del x[n:]
                    self.head = n
                self.push(self.out, x)
                return
            if head + 1 == size:
                self.frames = []
                self.head = 0
            else:
                self.head = head + 1
            self.push(self.out, frames[head])
        elif self.error is not None:
            self.fail_stage(self.error)
        elif self.is_closed(self.in_):
            self.complete_stage()
        else:
            self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        if self.error is None:
            self.finish()
        if self.is_available(self.out):
            self.on_pull()
        # else: the queued frames go out on the next pulls, then the stage ends.


# -- delimiter ---------------------------------------------------------------------------
class DelimiterFraming(ByteFlowStage):
    """``Framing.delimiter`` (and ``Framing.lines``, with a ``decode`` step)."""

    name = "Framing.delimiter"

    def __init__(
        self,
        delimiter: bytes,
        maximum_frame_length: int,
        allow_truncation: bool,
        decode: Callable[[bytes, int], Any] | None = None,
        name: str = "Framing.delimiter",
        limit: str = "",
    ) -> None:
        self.name = name
        super().__init__()
        self.limit = limit or f"maximum_frame_length={maximum_frame_length}"
        self.delimiter = delimiter
        self.maximum_frame_length = maximum_frame_length
        self.allow_truncation = allow_truncation
        self.decode = decode

    def create_logic(self, attributes: Any) -> _DelimiterLogic:
        return _DelimiterLogic(self.shape, self)


class _DelimiterLogic(_FramingLogic):
    def __init__(self, shape: FlowShape, stage: DelimiterFraming) -> None:
        super().__init__(shape)
        self.OP = stage.name
        self.delim = stage.delimiter
        self.mx = stage.maximum_frame_length
        self.allow_truncation = stage.allow_truncation
        self.decode = stage.decode
        self.limit = stage.limit
        self.buf = bytearray()  # the bytes of the frame in progress
        self.base = 0  # stream position of buf[0]

    def _too_long(self, start: int, length: int, complete: bool) -> FramingError:
        what = (
            f"a frame of {length} bytes"
            if complete
            else f"{length} bytes without a delimiter {self.delim!r}"
        )
        return FramingError(
            f"[{self.OP}] the frame starting at stream byte {start} is longer than "
            f"{self.limit}: read {what}"
        )

    def _queue(self, parts: list[bytes], base: int) -> None:
        decode = self.decode
        if decode is None:
            if self.frames:
                self.frames.extend(parts)
            else:
                self.frames = parts  # (a list of our own, as split made it)
            return
        dl = len(self.delim)
        pos = base
        for p in parts:
            try:
                self.frames.append(decode(p, pos))
            except FramingError as e:
                self.error = e
                return
            pos += len(p) + dl

    def parse(self, chunk: bytes) -> None:
        buf = self.buf
        d = self.delim
        dl = len(d)
        mx = self.mx
        # Fast path: the chunk completes no frame (a delimiter may straddle the boundary).
        if d not in chunk and (dl == 1 or d not in bytes(buf[-(dl - 1) :]) + chunk[: dl - 1]):
            buf += chunk
            if len(buf) - dl + 1 > mx:
                self.error = self._too_long(self.base, len(buf), False)
            return
        if dl == 1 or not buf:
            # The delimiter cannot straddle into the chunk: split the chunk alone (no
            # copy of it) and prepend the frame in progress to its first frame.
            parts = chunk.split(d)
            rest = parts.pop()
            ok = _all_within(chunk, d, mx, len(chunk) - len(rest) - dl, parts)
            consumed = len(buf) + len(chunk) - len(rest)
            if buf:
                first = parts[0]
                parts[0] = b"".join((buf, first))
                ok = ok and len(buf) + len(first) <= mx
        else:
            data = bytes(buf) + chunk
            parts = data.split(d)
            rest = parts.pop()
            ok = _all_within(data, d, mx, len(data) - len(rest) - dl, parts)
            consumed = len(data) - len(rest)
        if not ok:
            pos = self.base
            for i, p in enumerate(parts):
                if len(p) > mx:
                    self._queue(parts[:i], self.base)
                    if self.error is None:
                        self.error = self._too_long(pos, len(p), True)
                    return
                pos += len(p) + dl
        self._queue(parts, self.base)
        self.base += consumed
        self.buf = bytearray(rest)
        if self.error is None and len(rest) - dl + 1 > mx:
            self.error = self._too_long(self.base, len(rest), False)

    def finish(self) -> None:
        buf = self.buf
        if not buf:
            return
        if not self.allow_truncation:
            self.error = FramingError(
                f"[{self.OP}] the stream ended inside a frame: {len(buf)} bytes from stream "
                f"byte {self.base} without a final delimiter {self.delim!r} "
                f"(allow_truncation=False)"
            )
        elif len(buf) > self.mx:
            self.error = self._too_long(self.base, len(buf), True)
        else:
            self._queue([bytes(buf)], self.base)
        self.buf = bytearray()


def _all_within(data: bytes, d: bytes, mx: int, end: int, parts: list[bytes]) -> bool:
    """True if none of ``parts``, the frames of ``data[:end]`` split at ``d``, is longer
    than ``mx``. When ``data`` has far fewer stretches of ``mx`` bytes than frames, a
    few ``rfind`` calls in C instead of one ``len`` per frame: for a one-byte delimiter,
    from each frame's start the last delimiter within ``mx`` bytes ends a frame within
    the limit (and so do all frames before it); none there, the frame is too long. For a
    longer delimiter (whose occurrences may overlap), aligned windows of
    ``w = (mx + 2) // 2`` bytes must each hold a delimiter (a frame over ``mx`` bytes
    would cover a whole window: ``mx + 1 >= 2w - 1``). Otherwise, or if that check
    fails, it measures every frame."""
    if len(d) == 1:
        if end // (mx + 1) * 4 < len(parts):
            rfind = data.rfind
            reach = mx + 1
            pos = 0
            while pos <= end:
                pos = rfind(d, pos, pos + reach) + 1
                if not pos:  # (rfind found none: -1)
                    return False
            return True
    else:
        w = (mx + 2) // 2
        if end // w * 4 < len(parts):
            find = data.find
            i = 0
            last = end - w
            while i <= last:
                if find(d, i, i + w) < 0:
                    break
                i += w
            else:
                return True
    return max(map(len, parts)) <= mx


# -- length field ------------------------------------------------------------------------
class LengthFieldFraming(ByteFlowStage):
    """``Framing.length_field`` (and ``simple_framing_protocol_decoder``: ``strip`` drops
    the header from each frame)."""

    name = "Framing.length_field"

    def __init__(
        self,
        field_length: int,
        field_offset: int,
        maximum_frame_length: int,
        byte_order: str,
        compute_frame_size: Callable[[bytes, int], int] | None = None,
        name: str = "Framing.length_field",
        limit: str = "",
        strip: bool = False,
    ) -> None:
        self.name = name
        super().__init__()
        self.field_length = field_length
        self.field_offset = field_offset
        self.maximum_frame_length = maximum_frame_length
        self.byte_order = byte_order
        self.compute_frame_size = compute_frame_size
        self.limit = limit or f"maximum_frame_length={maximum_frame_length}"
        self.strip = strip

    def create_logic(self, attributes: Any) -> _LengthFieldLogic:
        return _LengthFieldLogic(self.shape, self)


class _LengthFieldLogic(_FramingLogic):
    OP = "Framing.length_field"

    def __init__(self, shape: FlowShape, stage: LengthFieldFraming) -> None:
        super().__init__(shape)
        self.OP = stage.name
        self.stage = stage
        self.header = stage.field_offset + stage.field_length
        self.buf = bytearray()
        self.base = 0  # stream position of buf[0]
        self.pending: int | None = None  # the size of the incomplete frame at buf[0]

    def _frame_size(self, start: int, length: int) -> int | None:
        """The size of the frame at ``buf[start]`` whose length field holds ``length``:
        header plus ``length``, or what ``compute_frame_size(offset_bytes, length)`` says
        (Akka's ``computeFrameSize``). None (with ``error`` set) if that raised or gave
        no int."""
        compute = self.stage.compute_frame_size
        if compute is None:
            return self.header + length
        off = self.stage.field_offset
        try:
            size = compute(bytes(self.buf[start : start + off]), length)
        except Exception as e:
            self.error = e
            return None
        if isinstance(size, bool) or not isinstance(size, int):
            self.error = TypeError(
                f"[{self.OP}] compute_frame_size must return an int, got "
                f"{type(size).__name__} {size!r:.60} for the frame header at stream byte "
                f"{self.base + start}"
            )
            return None
        return size

    def parse(self, chunk: bytes) -> None:
        buf = self.buf
        buf += chunk
        s = self.stage
        header = self.header
        off = s.field_offset
        order: Any = s.byte_order
        mx = s.maximum_frame_length
        skip = header if s.strip else 0
        start = 0
        n = len(buf)
        frames = self.frames
        size: int | None = self.pending  # of the frame at buf[0], if known
        while n - start >= header:
            if size is None:
                length = int.from_bytes(buf[start + off : start + header], order)
                size = self._frame_size(start, length)
                if size is None:
                    break
            if size > mx:
                self.error = FramingError(
                    f"[{self.OP}] the frame header at stream byte {self.base + start} "
                    f"declares a frame of {size} bytes (header included), more than "
                    f"{s.limit}"
                )
                break
            if size < header:
                self.error = FramingError(
                    f"[{self.OP}] compute_frame_size gave {size} bytes for the frame at "
                    f"stream byte {self.base + start}, less than its header "
                    f"(field_offset + field_length = {header})"
                )
                break
            if n - start < size:
                break
            frames.append(bytes(buf[start + skip : start + size]))
            start += size
            size = None
        # The size of an incomplete frame is kept: compute_frame_size runs once a frame.
        self.pending = size if self.error is None else None
        if start:
            del buf[:start]
            self.base += start

    def finish(self) -> None:
        if self.buf:
            self.error = FramingError(
                f"[{self.OP}] the stream ended inside a frame: {len(self.buf)} bytes from "
                f"stream byte {self.base} do not make a complete frame"
            )


class SimpleFramingProtocolEncoder(ByteFlowStage):
    """``Framing.simple_framing_protocol_encoder``: a 4-byte big-endian length header in
    front of each message."""

    name = "Framing.simple_framing_protocol_encoder"

    def __init__(self, maximum_message_length: int) -> None:
        super().__init__()
        self.maximum_message_length = maximum_message_length

    def create_logic(self, attributes: Any) -> _EncoderLogic:
        return _EncoderLogic(self.shape, self.maximum_message_length)


class _EncoderLogic(ByteFlowLogic):
    OP = SimpleFramingProtocolEncoder.name

    def __init__(self, shape: FlowShape, maximum_message_length: int) -> None:
        super().__init__(shape)
        self.mx = maximum_message_length
        self.count = 0  # messages encoded so far (for the error message)
        self.consumed = 0  # payload bytes so far (for type errors)

    def on_push(self) -> None:
        msg = require_bytes(self.OP, self.grab(self.in_), self.consumed)
        size = len(msg)
        if size > self.mx:
            self.fail_stage(
                FramingError(
                    f"[{self.OP}] a message of {size} bytes is longer than "
                    f"maximum_message_length={self.mx} (after {self.count} messages)"
                )
            )
            return
        self.count += 1
        self.consumed += size
        self.push(self.out, size.to_bytes(4, "big") + msg)

    def on_pull(self) -> None:
        self.pull(self.in_)


# -- JSON objects ------------------------------------------------------------------------
_JSON_NOT_SEPARATOR = re.compile(rb"[^ \t\r\n,\[\]]")
_JSON_IN_OBJECT = re.compile(rb'["{}]')
_JSON_IN_STRING = re.compile(rb'["\\]')
_QUOTE, _BACKSLASH, _OPEN, _CLOSE = ord('"'), ord("\\"), ord("{"), ord("}")


class JsonObjectScanner(ByteFlowStage):
    """``JsonFraming.object_scanner``."""

    name = "JsonFraming.object_scanner"

    def __init__(self, maximum_object_length: int) -> None:
        super().__init__()
        self.maximum_object_length = maximum_object_length

    def create_logic(self, attributes: Any) -> _JsonLogic:
        return _JsonLogic(self.shape, self.maximum_object_length)


class _JsonLogic(_FramingLogic):
    """Pekko's ``JsonObjectParser``: between objects, whitespace, ``[``, ``]`` and ``,``
    are skipped and anything but ``{`` is an error; inside an object only ``{``, ``}``
    and strings (with backslash escapes) matter."""

    OP = "JsonFraming.object_scanner"

    def __init__(self, shape: FlowShape, maximum_object_length: int) -> None:
        super().__init__(shape)
        self.mx = maximum_object_length
        self.buf = bytearray()
        self.base = 0  # stream position of buf[0]
        self.pos = 0  # scan position in buf
        self.depth = 0  # 0: between objects (then buf[0] is where scanning resumes)
        self.in_string = False

    def _too_long(self, length: int) -> FramingError:
        return FramingError(
            f"[{self.OP}] the JSON object starting at stream byte {self.base} is longer "
            f"than maximum_object_length={self.mx}: read {length} bytes of it"
        )

    def parse(self, chunk: bytes) -> None:
        buf = self.buf
        buf += chunk
        n = len(buf)
        pos = self.pos
        mx = self.mx
        while True:
            if self.depth == 0:
                m = _JSON_NOT_SEPARATOR.search(buf, pos)
                if m is None:
                    pos = n
                    break
                i = m.start()
                if buf[i] != _OPEN:
                    self.error = FramingError(
                        f"[{self.OP}] invalid JSON at stream byte {self.base + i}: "
                        f"{bytes(buf[i : i + 20])!r} where an object ('{{') or a separator "
                        f"(whitespace, ',', '[', ']') was expected"
                    )
                    pos = i
                    break
                del buf[:i]  # buf[0] is now the object's '{'
                self.base += i
                n -= i
                pos = 1
                self.depth = 1
                self.in_string = False
            scan = buf if n <= mx else memoryview(buf)[: mx + 1]  # no need to look further
            while self.depth:
                if self.in_string:
                    m = _JSON_IN_STRING.search(scan, pos)
                    if m is None:
                        pos = len(scan)
                        break
                    i = m.start()
                    if buf[i] == _BACKSLASH:
                        if i + 1 >= len(scan):
                            pos = i  # the escaped byte is still to come
                            break
                        pos = i + 2
                    else:
                        self.in_string = False
                        pos = i + 1
                else:
                    m = _JSON_IN_OBJECT.search(scan, pos)
                    if m is None:
                        pos = len(scan)
                        break
                    i = m.start()
                    c = buf[i]
                    pos = i + 1
                    if c == _QUOTE:
                        self.in_string = True
                    elif c == _OPEN:
                        self.depth += 1
                    else:
                        self.depth -= 1
            if isinstance(scan, memoryview):
                scan.release()
            if self.depth:
                if n > mx:
                    self.error = self._too_long(n)
                break
            if pos > mx:
                self.error = self._too_long(pos)
                break
            self.frames.append(bytes(buf[:pos]))
            del buf[:pos]
            self.base += pos
            n -= pos
            pos = 0
        if self.depth == 0 and self.error is None:
            del buf[:pos]  # only separators
            self.base += pos
            pos = 0
        self.pos = pos

    def finish(self) -> None:
        if self.depth:
            self.error = PartialObjectError(
                f"[{self.OP}] the stream ended inside the JSON object starting at stream "
                f"byte {self.base} ({len(self.buf)} bytes of it read)"
            )


# -- the public factories ----------------------------------------------------------------
def _decode_line(encoding: str, errors: str, op: str, maximum: int) -> Callable[[bytes, int], str]:
    def decode(frame: bytes, position: int) -> str:
        if frame.endswith(b"\r"):
            frame = frame[:-1]
        if len(frame) > maximum:
            raise FramingError(
                f"[{op}] the line starting at stream byte {position} is longer than "
                f"maximum_line_length={maximum}: read a line of {len(frame)} bytes"
            )
        try:
            return frame.decode(encoding, errors)
        except UnicodeDecodeError as e:
            raise FramingError(
                f"[{op}] the line starting at stream byte {position} is not valid "
                f"{encoding}: {e.reason} at stream byte {position + e.start}"
            ) from e

    return decode


class Framing:
    """Akka's ``Framing``: delimiter and length-field framing of byte streams."""

    @staticmethod
    def delimiter(
        delimiter: bytes, maximum_frame_length: int, allow_truncation: bool = False
    ) -> Flow[bytes, bytes, NotUsedType]:
        """Split the byte stream at each ``delimiter``; frames exclude the delimiter
        (consecutive delimiters give empty frames).

        A frame longer than ``maximum_frame_length`` fails the stream with a
        ``FramingError`` (as soon as that is certain, without waiting for the
        delimiter). Bytes after the last delimiter are emitted as a last frame if
        ``allow_truncation``, else they fail the stream.

        *Emits when* a frame is complete and downstream pulls.
        *Backpressures when* downstream backpressures and no frame is pending.
        *Completes when* upstream completes and the pending frames were emitted.
        *Fails when* a frame is over the limit, or truncated without allow_truncation
        (after the frames before it were emitted).
        *Cancels when* downstream cancels.
        """
        op = "Framing.delimiter"
        if not isinstance(delimiter, bytes | bytearray) or not delimiter:
            raise ValueError(f"{op}: delimiter must be non-empty bytes, got {delimiter!r}")
        require_positive_int(op, "maximum_frame_length", maximum_frame_length)
        return Flow.from_graph(
            DelimiterFraming(bytes(delimiter), maximum_frame_length, allow_truncation)
        )

    @staticmethod
    def lines(
        maximum_line_length: int,
        encoding: str = "utf-8",
        errors: str = "strict",
        allow_truncation: bool = True,
    ) -> Flow[bytes, str, NotUsedType]:
        """Decode a byte stream into lines of text, as iterating a text file does:
        split at ``b"\\n"``, drop a trailing ``"\\r"``, decode with ``encoding``. Akka's
        ``Framing.delimiter(ByteString("\\n"), max, allowTruncation = true).map(_.utf8String)``.

        A last line without a newline is emitted (``allow_truncation=False`` fails on it
        instead). A line longer than ``maximum_line_length`` bytes, or one that does not
        decode (with ``errors="strict"``), fails the stream with a ``FramingError``
        naming its stream byte position.

        *Emits when* a line is complete and downstream pulls.
        *Backpressures when* downstream backpressures and no line is pending.
        *Completes when* upstream completes and the pending lines were emitted.
        *Fails when* a line is over the limit or cannot be decoded.
        *Cancels when* downstream cancels.
        """
        op = "Framing.lines"
        require_positive_int(op, "maximum_line_length", maximum_line_length)
        "".encode(encoding)  # an unknown encoding fails here, not mid-stream
        return Flow.from_graph(
            DelimiterFraming(
                b"\n",
                maximum_line_length + 1,  # room for a "\r" that is dropped
                allow_truncation,
                _decode_line(encoding, errors, op, maximum_line_length),
                name=op,
                limit=f"maximum_line_length={maximum_line_length} (+1 for a '\\r')",
            )
        )

    @staticmethod
    def length_field(
        field_length: int,
        field_offset: int = 0,
        maximum_frame_length: int = 2**31 - 1,
        byte_order: ByteOrder = "little",
        compute_frame_size: Callable[[bytes, int], int] | None = None,
    ) -> Flow[bytes, bytes, NotUsedType]:
        """Frames that carry their own length: an unsigned integer of ``field_length``
        (1 to 4) bytes at ``field_offset`` gives the number of bytes that follow the
        field. Emitted frames include the header (offset bytes and length field), as
        Akka's.

        ``compute_frame_size(offset_bytes, length)`` (Akka's ``computeFrameSize``), when
        given, returns the size of the whole frame instead: it gets the ``field_offset``
        bytes before the length field and the decoded length, for layouts such as
        ``[offset bytes][length][body][footer]`` or a length that counts something else.
        It is called once per frame, as soon as its header is there; the size must be at
        least ``field_offset + field_length`` (else a ``FramingError``); a call that
        raises fails the stream with that exception.

        A header declaring a frame (header included) longer than
        ``maximum_frame_length`` fails the stream with a ``FramingError`` at once; so do
        leftover bytes when upstream completes (a truncated frame).

        *Emits when* a frame is complete and downstream pulls.
        *Backpressures when* downstream backpressures and no frame is pending.
        *Completes when* upstream completes and the pending frames were emitted.
        *Fails when* a frame is over the limit or truncated, or ``compute_frame_size``
        raises or gives a size shorter than the header.
        *Cancels when* downstream cancels.
        """
        op = "Framing.length_field"
        if compute_frame_size is not None and not callable(compute_frame_size):
            raise TypeError(
                f"{op}: compute_frame_size must be a function (offset_bytes, length) -> "
                f"frame size, got {compute_frame_size!r}"
            )
        if field_length not in (1, 2, 3, 4) or isinstance(field_length, bool):
            raise ValueError(f"{op}: field_length must be 1, 2, 3 or 4, got {field_length!r}")
        if isinstance(field_offset, bool) or not isinstance(field_offset, int) or field_offset < 0:
            raise ValueError(f"{op}: field_offset must be an int >= 0, got {field_offset!r}")
        require_positive_int(op, "maximum_frame_length", maximum_frame_length)
        if byte_order not in ("little", "big"):
            raise ValueError(f"{op}: byte_order must be 'little' or 'big', got {byte_order!r}")
        return Flow.from_graph(
            LengthFieldFraming(
                field_length, field_offset, maximum_frame_length, byte_order, compute_frame_size
            )
        )

    @staticmethod
    def simple_framing_protocol(
        maximum_message_length: int,
    ) -> BidiFlow[bytes, bytes, bytes, bytes, NotUsedType]:
        """A ``BidiFlow`` of a simple framing protocol (Akka's ``simpleFramingProtocol``):
        outbound (``in1 -> out1``), each message gets a 4-byte big-endian header holding
        its length (``simple_framing_protocol_encoder``); inbound (``in2 -> out2``), the
        byte stream is cut into those frames and the headers are dropped
        (``simple_framing_protocol_decoder``), however the chunks fall. Useful to send
        separate messages over a byte stream (TCP) when no existing protocol must be
        spoken.

        ``maximum_message_length`` bounds the messages both ways (the header not
        included): a longer message fails the direction it travels with a
        ``FramingError``. The two directions are independent (``BidiFlow.from_flows``).
        Materialized value: ``NotUsed``.
        """
        require_positive_int(
            "Framing.simple_framing_protocol", "maximum_message_length", maximum_message_length
        )
        return BidiFlow.from_flows(
            Framing.simple_framing_protocol_encoder(maximum_message_length),
            Framing.simple_framing_protocol_decoder(maximum_message_length),
        )

    @staticmethod
    def simple_framing_protocol_encoder(
        maximum_message_length: int,
    ) -> Flow[bytes, bytes, NotUsedType]:
        """Prepend to each message a 4-byte big-endian header holding its length (the
        outbound side of ``simple_framing_protocol``).

        A message longer than ``maximum_message_length`` bytes fails the stream with a
        ``FramingError`` naming the stage, its size and the limit (nothing of it is
        sent); one that is not bytes-like fails it with a ``TypeError``.

        *Emits when* a message arrived and downstream pulls (one frame per message).
        *Backpressures when* downstream backpressures.
        *Completes when* upstream completes.
        *Fails when* a message is over the limit.
        *Cancels when* downstream cancels.
        """
        op = "Framing.simple_framing_protocol_encoder"
        require_positive_int(op, "maximum_message_length", maximum_message_length)
        _max_message(op, maximum_message_length)
        return Flow.from_graph(SimpleFramingProtocolEncoder(maximum_message_length))

    @staticmethod
    def simple_framing_protocol_decoder(
        maximum_message_length: int,
    ) -> Flow[bytes, bytes, NotUsedType]:
        """Cut a byte stream into the messages of ``simple_framing_protocol`` (a 4-byte
        big-endian length, then that many bytes) and emit them without their header:
        Akka's ``length_field(4, 0, maximum_message_length + 4, "big")`` with the header
        dropped.

        A header declaring a message longer than ``maximum_message_length`` fails the
        stream with a ``FramingError`` at once; so do leftover bytes when upstream
        completes (a truncated message).

        *Emits when* a message is complete and downstream pulls.
        *Backpressures when* downstream backpressures and no message is pending.
        *Completes when* upstream completes and the pending messages were emitted.
        *Fails when* a message is over the limit or truncated.
        *Cancels when* downstream cancels.
        """
        op = "Framing.simple_framing_protocol_decoder"
        require_positive_int(op, "maximum_message_length", maximum_message_length)
        _max_message(op, maximum_message_length)
        return Flow.from_graph(
            LengthFieldFraming(
                4,
                0,
                maximum_message_length + 4,
                "big",
                name=op,
                limit=f"maximum_message_length={maximum_message_length} (+4 header bytes)",
                strip=True,
            )
        )


def _max_message(op: str, maximum_message_length: int) -> None:
    if maximum_message_length > 2**32 - 1:
        raise ValueError(
            f"{op}: maximum_message_length must fit the 4-byte header (at most 2**32 - 1), "
            f"got {maximum_message_length}"
        )


class JsonFraming:
    """Akka's ``JsonFraming``: JSON objects out of a byte stream."""

    @staticmethod
    def object_scanner(maximum_object_length: int) -> Flow[bytes, bytes, NotUsedType]:
        """Emit each top-level JSON object (``{...}``, as bytes) of a byte stream:
        concatenated objects, separated by whitespace or commas, or the objects of a
        top-level array (``[{...}, {...}]``), as Pekko's ``JsonObjectParser``. Braces
        inside strings (with backslash escapes) do not count. Objects are not
        validated beyond their braces: parse them downstream.

        Anything else between objects fails the stream with a ``FramingError`` naming
        the byte; an object longer than ``maximum_object_length`` bytes fails it too,
        and so does the stream ending inside an object (``PartialObjectError``).

        *Emits when* an object is complete and downstream pulls.
        *Backpressures when* downstream backpressures and no object is pending.
        *Completes when* upstream completes and the pending objects were emitted.
        *Fails when* invalid input, an object over the limit, or a truncated object.
        *Cancels when* downstream cancels.
        """
        require_positive_int(
            "JsonFraming.object_scanner", "maximum_object_length", maximum_object_length
        )
        return Flow.from_graph(JsonObjectScanner(maximum_object_length))

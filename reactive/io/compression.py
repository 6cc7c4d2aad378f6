"""Compression: gzip and deflate (zlib format) as flows over ``bytes``, both ways.

Akka's ``Compression`` on the standard library's ``zlib``, incremental: memory is bounded
by one input chunk plus zlib's window, whatever the stream's length. The compressors
flush (``Z_SYNC_FLUSH``) after every chunk, as Akka's do, so each emitted chunk can be
decompressed without waiting for the next; the decompressors emit chunks of at most
``max_bytes_per_chunk`` bytes and pull more input only when they have nothing left.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

from .._dsl.blueprints import Flow
from ._stages import ByteFlowLogic, ByteFlowStage, require_bytes
from .errors import CompressionError

if TYPE_CHECKING:
    from .._keep import NotUsedType
    from ..stage import FlowShape

__all__ = ["Compression"]

_GZIP_WBITS = 16 + zlib.MAX_WBITS
_RAW_WBITS = -zlib.MAX_WBITS


class Compressor(ByteFlowStage):
    """``Compression.gzip`` / ``Compression.deflate``."""

    def __init__(self, name: str, level: int, wbits: int) -> None:
        self.name = name
        super().__init__()
        self.level = level
        self.wbits = wbits

    def create_logic(self, attributes: Any) -> _CompressorLogic:
        return _CompressorLogic(self.shape, self)


class _CompressorLogic(ByteFlowLogic):
    def __init__(self, shape: FlowShape, stage: Compressor) -> None:
        super().__init__(shape)
        self.OP = stage.name
        self.z = zlib.compressobj(stage.level, zlib.DEFLATED, stage.wbits)
        self.consumed = 0

    def on_push(self) -> None:
        chunk = require_bytes(self.OP, self.grab(self.in_), self.consumed)
        self.consumed += len(chunk)
        if not chunk:
            self.pull(self.in_)
            return
        z = self.z
        out = z.compress(chunk) + z.flush(zlib.Z_SYNC_FLUSH)
        self.push(self.out, out)

    def on_pull(self) -> None:
        self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        # The trailer (and, for an empty stream, the whole header) goes out last.
        self.emit(self.out, self.z.flush(zlib.Z_FINISH), self.complete_stage)


class Decompressor(ByteFlowStage):
    """``Compression.gunzip`` / ``Compression.inflate``."""

    def __init__(self, name: str, max_bytes_per_chunk: int, wbits: int) -> None:
        self.name = name
        super().__init__()
        self.max_bytes_per_chunk = max_bytes_per_chunk
        self.wbits = wbits

    def create_logic(self, attributes: Any) -> _DecompressorLogic:
        return _DecompressorLogic(self.shape, self)


class _DecompressorLogic(ByteFlowLogic):
    """One decompression step per pull: ``decompress(pending, max_bytes_per_chunk)``.

    ``pending`` is the input zlib has not consumed yet; ``more`` says zlib may still hold
    output (a step that filled ``max_bytes_per_chunk`` exactly). Upstream is pulled
    only when neither is left. A gzip stream may hold several members, one after the
    other (as ``gzip.decompress`` accepts); each one starts a fresh decompressor.
    """

    def __init__(self, shape: FlowShape, stage: Decompressor) -> None:
        super().__init__(shape)
        self.OP = stage.name
        self.wbits = stage.wbits
        self.mx = stage.max_bytes_per_chunk
        self.z = zlib.decompressobj(self.wbits)
        self.pending = b""
        self.more = False
        self.consumed = 0  # input bytes received
        self.member_start = 0  # input position where the current member began
        self.in_member = False  # some input of the current member was given to zlib
        #: Trailing garbage found after the output of the step that found it went out.
        self.garbage: CompressionError | None = None

    def _step(self) -> bytes:
        if self.garbage is not None:
            raise self.garbage
        z = self.z
        data, self.pending = self.pending, b""
        if data:
            self.in_member = True
        try:
            out = z.decompress(data, self.mx)
        except zlib.error as e:
            raise CompressionError(
                f"[{self.OP}] corrupt input in the stream starting at input byte "
                f"{self.member_start} (around input byte {self.consumed - len(data)}): {e}"
            ) from e
        self.pending = z.unconsumed_tail
        self.more = len(out) == self.mx
        if z.eof:
            rest = z.unused_data
            self.member_start = self.consumed - len(self.pending) - len(rest)
            if not rest.strip(b"\0"):
                self.in_member = False  # the end, maybe zero padding (as gzip tolerates)
            elif self.wbits == _GZIP_WBITS:
                self.z = zlib.decompressobj(self.wbits)  # the next gzip member
                self.pending = rest + self.pending
                self.in_member = False
            else:
                garbage = CompressionError(
                    f"[{self.OP}] {len(rest)} bytes of trailing garbage after the end of "
                    f"the compressed stream at input byte {self.member_start}"
                )
                if not out:
                    raise garbage
                # The stream's last output goes out first; the next step fails.
                self.garbage = garbage
                self.pending = b""
                self.more = True
        return out

    def _drain(self) -> bool:
        """Push one non-empty step if any; False when nothing was pushed."""
        while self.pending or self.more:
            try:
                out = self._step()
            except CompressionError as e:
                self.fail_stage(e)
                return True
            if out:
                self.push(self.out, out)
                return True
        return False

    def on_push(self) -> None:
        chunk = require_bytes(self.OP, self.grab(self.in_), self.consumed)
        self.consumed += len(chunk)
        self.pending = self.pending + chunk if self.pending else chunk
        if not self._drain():
            self.pull(self.in_)

    def on_pull(self) -> None:
        if not self._drain():
            if self.is_closed(self.in_):
                self._finish()
            else:
                self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        if not (self.pending or self.more):
            self._finish()
        # else: the next pulls drain what is left, then _finish

    def _finish(self) -> None:
        z = self.z
        if self.in_member and not z.eof:
            self.fail_stage(
                CompressionError(
                    f"[{self.OP}] truncated input: the stream ended after {self.consumed} "
                    f"input bytes inside the compressed stream starting at input byte "
                    f"{self.member_start}"
                )
            )
        else:
            self.complete_stage()


class Compression:
    """Akka's ``Compression``: gzip and deflate flows (stdlib ``zlib``)."""

    @staticmethod
    def gzip(level: int = zlib.Z_BEST_COMPRESSION) -> Flow[bytes, bytes, NotUsedType]:
        """Compress a byte stream into gzip format (``level`` 0-9; Akka's default 9).

        Every input chunk is flushed (``Z_SYNC_FLUSH``): each output chunk
        decompresses without waiting for the next one, at some cost for tiny chunks.

        *Emits when* an input chunk was compressed and downstream pulls; the gzip
        trailer when upstream completes.
        *Backpressures when* downstream backpressures.
        *Completes when* upstream completes and the trailer was emitted.
        *Cancels when* downstream cancels.
        """
        return Flow.from_graph(Compressor("Compression.gzip", _level(level), _GZIP_WBITS))

    @staticmethod
    def deflate(
        level: int = zlib.Z_BEST_COMPRESSION, nowrap: bool = False
    ) -> Flow[bytes, bytes, NotUsedType]:
        """Compress a byte stream with deflate: zlib format, or raw deflate with
        ``nowrap=True`` (no header or checksum). Same semantics as ``gzip``.

        *Emits when* an input chunk was compressed and downstream pulls; the final bytes
        when upstream completes.
        *Backpressures when* downstream backpressures.
        *Completes when* upstream completes and the final bytes were emitted.
        *Cancels when* downstream cancels.
        """
        wbits = _RAW_WBITS if nowrap else zlib.MAX_WBITS
        return Flow.from_graph(Compressor("Compression.deflate", _level(level), wbits))

    @staticmethod
    def gunzip(max_bytes_per_chunk: int = 65536) -> Flow[bytes, bytes, NotUsedType]:
        """Decompress a gzip byte stream (one or more members), emitting chunks of at
        most ``max_bytes_per_chunk`` bytes.

        Corrupt input fails the stream with a ``CompressionError`` naming the input
        byte position; so does a stream ending inside a member, or garbage after it.

        *Emits when* decompressed bytes are available and downstream pulls.
        *Backpressures when* downstream backpressures (input is pulled only when all
        output of the previous input chunk was emitted).
        *Completes when* upstream completes and everything was emitted.
        *Fails when* the input is corrupt or truncated.
        *Cancels when* downstream cancels.
        """
        mx = _max_chunk("Compression.gunzip", max_bytes_per_chunk)
        return Flow.from_graph(Decompressor("Compression.gunzip", mx, _GZIP_WBITS))

    @staticmethod
    def inflate(
        max_bytes_per_chunk: int = 65536, nowrap: bool = False
    ) -> Flow[bytes, bytes, NotUsedType]:
        """Decompress a deflate byte stream (zlib format, or raw with ``nowrap=True``).
        Same semantics as ``gunzip``.

        *Emits when* decompressed bytes are available and downstream pulls.
        *Backpressures when* downstream backpressures.
        *Completes when* upstream completes and everything was emitted.
        *Fails when* the input is corrupt or truncated (``CompressionError``).
        *Cancels when* downstream cancels.
        """
        mx = _max_chunk("Compression.inflate", max_bytes_per_chunk)
        wbits = _RAW_WBITS if nowrap else zlib.MAX_WBITS
        return Flow.from_graph(Decompressor("Compression.inflate", mx, wbits))


def _level(level: Any) -> int:
    if isinstance(level, bool) or not isinstance(level, int) or not -1 <= level <= 9:
        raise ValueError(f"Compression: level must be an int from 0 to 9 (or -1), got {level!r}")
    return level


def _max_chunk(op: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"{op}: max_bytes_per_chunk must be a positive int, got {n!r}")
    return n

"""The errors of the stream IO stages (``reactive.io``), all ``StreamError`` s.

::

    StreamError
     +-- IOStreamError                   base of the errors raised by reactive.io
          +-- FramingError               a frame over its limit, a truncated frame, bad JSON
          |    +-- PartialObjectError    the stream ended inside a JSON object
          +-- CompressionError           corrupt or truncated compressed input
          +-- IOOperationIncompleteError  a file/TCP stage failed after ``count`` bytes
          +-- ProcessFailedError         a subprocess exited with a non-zero code
          +-- StreamTcpError             a TCP connection failed
               +-- BindFailedError       ``Tcp.bind`` could not listen

Import them from ``reactive.io``. The whole tree of the package is drawn in
``reactive/_errors.py``.
"""

from __future__ import annotations

from .._errors import StreamError

__all__ = [
    "IOStreamError",
    "FramingError",
    "PartialObjectError",
    "CompressionError",
    "IOOperationIncompleteError",
    "ProcessFailedError",
    "StreamTcpError",
    "BindFailedError",
]


class IOStreamError(StreamError):
    """Base class of the errors raised by the stream IO stages (``reactive.io``)."""


class FramingError(IOStreamError):
    """A framing stage met a frame over its maximum length, a truncated last frame, or
    input it cannot frame; the message names the stage, the limit and the byte position.
    (Akka's ``FramingException``.)"""


class PartialObjectError(FramingError):
    """``JsonFraming.object_scanner``: the stream completed in the middle of a JSON object."""


class CompressionError(IOStreamError):
    """A decompressing stage met corrupt or truncated input; the message names the stage
    and the input byte position."""


class IOOperationIncompleteError(IOStreamError):
    """A file or connection stage failed after transferring ``count`` bytes; the original
    error is ``__cause__``. (Akka's ``IOOperationIncompleteException``.)"""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


class ProcessFailedError(IOStreamError):
    """A process of ``Subprocess.flow`` exited with a non-zero code (``returncode``);
    ``stderr`` holds the tail of its error output, also quoted in the message."""

    def __init__(self, message: str, returncode: int, stderr: bytes) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


class StreamTcpError(IOStreamError):
    """A TCP connection failed (refused, reset by the peer, TLS handshake, ...); the
    message names the operator and the addresses, the OS error is ``__cause__``.
    (Akka's ``StreamTcpException``.)"""


class BindFailedError(StreamTcpError):
    """``Tcp.bind`` could not listen on the address (in use, not available, no
    permission). (Akka's ``BindFailedException``.)"""

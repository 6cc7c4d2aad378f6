"""Stream IO (``reactive.io``): Akka's ``Framing``, ``JsonFraming``, ``Compression``,
``FileIO`` and ``Tcp``, on anyio's streams (asyncio backend; the ``io`` extra).

- ``framing``: ``Framing.delimiter`` / ``lines`` / ``length_field``,
  ``JsonFraming.object_scanner`` (pure flows over ``bytes``)
- ``compression``: ``Compression.gzip`` / ``gunzip`` / ``deflate`` / ``inflate``
- ``files``: ``FileIO.from_path`` / ``to_path`` (materialize an awaitable ``IOResult``)
- ``converters``: ``StreamConverters.from_receive_stream`` / ``to_send_stream`` (anyio),
  ``from_input_stream`` / ``to_output_stream`` (blocking file-like objects in worker
  threads), ``as_input_stream`` / ``as_output_stream`` / ``as_iterator`` (blocking
  objects for code in another thread)
- ``process``: ``Subprocess.flow`` (stdin in, stdout out, on ``anyio.open_process``)
- ``tcp``: ``Tcp.bind`` / ``bind_and_handle`` / ``outgoing_connection`` (with connect and
  idle timeouts), TLS through an ``ssl.SSLContext``
- ``errors``: ``IOStreamError`` and its subclasses (``FramingError``, ``CompressionError``,
  ``StreamTcpError``, ...), all ``StreamError`` s; the tree is drawn there
"""

from .._public import publish as _publish
from .compression import Compression
from .converters import StreamConverters
from .errors import (
    BindFailedError,
    CompressionError,
    FramingError,
    IOOperationIncompleteError,
    IOStreamError,
    PartialObjectError,
    ProcessFailedError,
    StreamTcpError,
)
from .files import FileIO, IOResult
from .framing import Framing, JsonFraming
from .process import ProcessResult, Subprocess
from .tcp import IncomingConnection, OutgoingConnection, ServerBinding, Tcp

__all__ = [
    "BindFailedError",
    "Compression",
    "CompressionError",
    "FileIO",
    "Framing",
    "FramingError",
    "IOOperationIncompleteError",
    "IOResult",
    "IOStreamError",
    "IncomingConnection",
    "JsonFraming",
    "OutgoingConnection",
    "PartialObjectError",
    "ProcessFailedError",
    "ProcessResult",
    "ServerBinding",
    "StreamConverters",
    "StreamTcpError",
    "Subprocess",
    "Tcp",
]

_publish(__name__, globals())

"""Stream IO (``reactive.io``): Akka's ``Framing``, ``JsonFraming``, ``Compression``,
``FileIO`` and ``Tcp``, on anyio's streams (asyncio backend; the ``io`` extra).

- ``framing``: ``Framing.delimiter`` / ``lines`` / ``length_field``,
  ``JsonFraming.object_scanner`` (pure flows over ``bytes``)
- ``compression``: ``Compression.gzip`` / ``gunzip`` / ``deflate`` / ``inflate``
- ``files``: ``FileIO.from_path`` / ``to_path`` (materialize an awaitable ``IOResult``)
- ``converters``: ``StreamConverters.from_receive_stream`` / ``to_send_stream`` (anyio)
- ``process``: ``Subprocess.flow`` (stdin in, stdout out, on ``anyio.open_process``)
- ``tcp``: ``Tcp.bind`` / ``outgoing_connection``, TLS through an ``ssl.SSLContext``

Errors (all ``StreamError``)::

    IOStreamError
     +-- FramingError
     |    +-- PartialObjectError
     +-- CompressionError
     +-- IOOperationIncompleteError
     +-- ProcessFailedError
     +-- StreamTcpError
          +-- BindFailedError
"""

from ._stages import (
    CompressionError,
    FramingError,
    IOOperationIncompleteError,
    IOStreamError,
    PartialObjectError,
)
from .compression import Compression
from .converters import StreamConverters
from .files import FileIO, IOResult
from .framing import Framing, JsonFraming
from .process import ProcessFailedError, ProcessResult, Subprocess
from .tcp import (
    BindFailedError,
    IncomingConnection,
    OutgoingConnection,
    ServerBinding,
    StreamTcpError,
    Tcp,
)

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

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name

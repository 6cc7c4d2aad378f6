"""The errors of the key-value stores (``reactive.state``), ``StreamError`` s.

::

    StreamError
     +-- StoreClosedError     a store (or a view of one) used while it is not open

Import it from ``reactive.state``. The whole tree of the package is drawn in
``reactive/_errors.py``.
"""

from __future__ import annotations

from .._errors import StreamError

__all__ = ["StoreClosedError"]


class StoreClosedError(StreamError):
    """A store (or a view of one) was used while it is not open: before its stream
    started it, or after the stream stopped and closed it."""

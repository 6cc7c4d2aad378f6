"""The errors of the key-value stores (``reactive.state``), ``StreamError`` s.

::

    StreamError
     +-- StoreClosedError     a store (or a view of one) used while it is not open
     +-- KeySerdeError        (also a TypeError) a key its store's key serde cannot encode
     +-- OwnershipNotReadyError  (also a RuntimeError) the ownership of a state server
                              cannot name a key's owner yet (its membership is starting)

Import them from ``reactive.state``. The whole tree of the package is drawn in
``reactive/_errors.py``.
"""

from __future__ import annotations

from .._errors import StreamError

__all__ = ["KeySerdeError", "OwnershipNotReadyError", "StoreClosedError"]


class StoreClosedError(StreamError):
    """A store (or a view of one) was used while it is not open: before its stream
    started it, or after the stream stopped and closed it."""


class KeySerdeError(StreamError, TypeError):
    """A key its store's key serde cannot encode (the message names the store, the key
    and the serde; the serde's error is the cause). Also a ``TypeError``: the caller's
    key, not the store, is wrong (the state server answers it with 400)."""


class OwnershipNotReadyError(StreamError, RuntimeError):
    """The ownership of a state server (a ``GroupMembership``) cannot name a key's owner
    yet: it has not started (or not finished starting: the partition count of a store's
    topic, or the members' records, are not read yet). Also a ``RuntimeError``. The
    state server answers it with 503 and ``Retry-After``: retry later."""

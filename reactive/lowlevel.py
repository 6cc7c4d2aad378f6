"""Low-level pieces for packages built on reactive (the Kafka connector uses them).

Custom stages need only :mod:`reactive.stage`. A connector that wants the fast paths and the
runtime's bookkeeping uses these too:

- the batch protocol (see :mod:`reactive._stage.batch`): :class:`Batch`, the pushes of a
  batch connection, and the hook lookups;
- :class:`AwaitingLogicMixin`: ``self._await(awaitable, handler)`` runs ``handler(future)``
  inside the stage when the awaitable is done (pending work is cancelled when the stage
  stops);
- :func:`new_promise`: a future for a materialized value whose unobserved failure is
  logged once, naming the stage;
- :func:`publish` and :func:`reduce_error`: give a package's public names their public
  ``__module__``, and make an error tree's root pickle.

These follow the runtime; unlike :mod:`reactive.stage` they may change between minor
versions.
"""

from __future__ import annotations

from ._errors import reduce_error
from ._ops.asyncsupport import AwaitingLogicMixin
from ._ops.sinks import new_promise
from ._public import publish
from ._stage.batch import (
    AcceptsBatches,
    Batch,
    HandsOver,
    accept_hook,
    hand_over_hook,
    lend_hook,
    settle_hook,
)

__all__ = [
    "Batch",
    "HandsOver",
    "AcceptsBatches",
    "hand_over_hook",
    "lend_hook",
    "settle_hook",
    "accept_hook",
    "AwaitingLogicMixin",
    "new_promise",
    "publish",
    "reduce_error",
]

publish(__name__, globals())

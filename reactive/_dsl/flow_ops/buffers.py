"""Explicit buffers (``_ops/buffers.py``).

One family of ``FlowOps`` (``reactive/_dsl/blueprints.py``), the operators shared by
``Source``, ``Flow`` and ``SubFlow``: a mixin whose methods build stages and append them
with the primitives of :class:`~._base.OpsBase`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._checks import (
    check,
    pos_int,
)
from ._base import Mat, OpsBase, Out, Repr

if TYPE_CHECKING:
    from ..._ops.buffers import OverflowStrategy

__all__ = ["BufferOps"]


class BufferOps(OpsBase[Out, Mat]):
    """Explicit buffers (``_ops/buffers.py``)."""

    __slots__ = ()

    def buffer(self, size: int, overflow_strategy: OverflowStrategy) -> Repr[Out, Mat]:
        """Buffer up to ``size`` elements; ``overflow_strategy`` says what happens when full.

        Upstream is pulled eagerly while there is room. ``drop_head`` drops the oldest
        buffered element, ``drop_tail`` the newest, ``drop_buffer`` all of them, ``drop_new``
        the incoming one; ``fail`` fails with ``BufferOverflowError``.

        Emits when downstream pulls and the buffer is not empty. Backpressures when the buffer
        is full and the strategy is ``backpressure``. Completes when upstream completed and the
        buffer was emptied. Fails at once when upstream fails (buffered elements are dropped),
        or on overflow with ``fail``. Cancels when downstream cancels.
        """
        check("buffer(size, overflow_strategy)", pos_int(size))
        from ..._ops.buffers import Buffer

        return self._via_stage(Buffer(size, overflow_strategy))

    def detach(self) -> Repr[Out, Mat]:
        """A one-element buffer decoupling upstream demand from downstream demand.

        Emits when downstream pulls and the element is buffered. Backpressures when the
        buffered element was not taken yet (upstream is pulled eagerly). Completes when
        upstream completed and the buffer is empty. Fails when upstream fails. Cancels when
        downstream cancels.
        """
        from ..._ops.buffers import Buffer
        from ..._ops.buffers import OverflowStrategy as OS

        return self._via_stage(Buffer(1, OS.backpressure, name="detach"))

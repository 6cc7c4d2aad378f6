"""Substreams (``_ops/substreams.py``): group_by, split_when, split_after.

One family of ``FlowOps`` (``reactive/_dsl/blueprints.py``), the operators shared by
``Source``, ``Flow`` and ``SubFlow``: a mixin whose methods build stages and append them
with the primitives of :class:`~._base.OpsBase`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from ..._checks import (
    check,
    fn,
    int_at_least,
)
from ._base import Mat, OpsBase, Out, SubRepr

__all__ = ["SubstreamOps"]


class SubstreamOps(OpsBase[Out, Mat]):
    """Substreams (``_ops/substreams.py``): group_by, split_when, split_after."""

    __slots__ = ()

    def group_by(
        self,
        max_substreams: int,
        key: Callable[[Out], Hashable],
        allow_closed_substream_recreation: bool = False,
    ) -> SubRepr[Out, Mat]:
        """Demultiplex into one substream per key; returns a ``SubFlow``.

        Keys of closed substreams are remembered (their later elements are dropped) and
        count towards ``max_substreams`` unless ``allow_closed_substream_recreation``.

        Emits when an element with a new key arrives (the substream Source, to the main
        output). Backpressures when the substream an element belongs to backpressures.
        Completes when upstream completes (completing every substream). Fails with
        ``TooManySubstreamsError`` past ``max_substreams``, or when upstream or ``key``
        fails. Cancels when downstream and every substream cancelled. Supervision:
        resume/restart drop the element whose ``key`` raised.
        """
        check("group_by(max_substreams, key)", int_at_least(max_substreams, 0), fn(key))
        from ..._ops.nesting import GroupBy
        from ..subflow import SubFlow

        sub: SubRepr[Out, Mat] = SubFlow(
            self._via_stage(GroupBy(max_substreams, key, allow_closed_substream_recreation))
        )
        return sub

    def split_when(self, p: Callable[[Out], bool]) -> SubRepr[Out, Mat]:
        """Start a new substream at each element for which ``p`` holds; returns a
        ``SubFlow``. The stream's first element starts the first substream without ``p``
        being asked (as Akka's). A cancelled substream is drained up to the next split.

        Emits when a new substream starts. Backpressures when the current substream
        does, or a new one is pending and downstream backpressures. Completes when
        upstream completes. Fails when upstream or ``p`` fails. Cancels when downstream
        cancelled and the current substream ended. Supervision: resume/restart drop the
        element whose ``p`` raised.
        """
        check("split_when(p)", fn(p))
        from ..._ops.nesting import Split
        from ..subflow import SubFlow

        sub: SubRepr[Out, Mat] = SubFlow(self._via_stage(Split(p, after=False)))
        return sub

    def split_after(self, p: Callable[[Out], bool]) -> SubRepr[Out, Mat]:
        """End the current substream after each element for which ``p`` holds; returns a
        ``SubFlow``. The element after that one starts a new substream.

        Emits when a new substream starts. Backpressures when the current substream does, or
        a new one is pending and downstream backpressures. Completes when upstream completes.
        Fails when upstream or ``p`` fails. Cancels when downstream cancelled and the current
        substream ended. Supervision: resume/restart drop the element whose ``p`` raised.
        """
        check("split_after(p)", fn(p))
        from ..._ops.nesting import Split
        from ..subflow import SubFlow

        sub: SubRepr[Out, Mat] = SubFlow(self._via_stage(Split(p, after=True)))
        return sub

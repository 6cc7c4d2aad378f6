"""Substreams (``_ops/substreams.py``): group_by, split_when, split_after.

One family of ``FlowOps`` (``reactive/_dsl/blueprints.py``), the operators shared by
``Source``, ``Flow`` and ``SubFlow``: a mixin whose methods build stages and append them
with the primitives of :class:`~._base.OpsBase`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from ..._checks import (
    check,
    fn,
    int_at_least,
)
from ._base import Mat, OpsBase, Out, SubRepr

if TYPE_CHECKING:
    from ..._ops.substreams import SubstreamCancelStrategy

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

    def split_when(
        self,
        p: Callable[[Out], bool],
        substream_cancel_strategy: SubstreamCancelStrategy | None = None,
    ) -> SubRepr[Out, Mat]:
        """Start a new substream at each element for which ``p`` holds; returns a
        ``SubFlow``. The stream's first element starts the first substream without ``p``
        being asked (as Akka's).

        ``substream_cancel_strategy`` (Akka's ``splitWhen(substreamCancelStrategy)``)
        says what a cancelled substream does: ``SubstreamCancelStrategy.drain`` (the
        default) drops its elements up to the next split and carries on;
        ``SubstreamCancelStrategy.propagate`` cancels upstream with the substream's cause
        and completes the main output (fails it if that cause is a failure).

        Emits when a new substream starts. Backpressures when the current substream
        does, or a new one is pending and downstream backpressures. Completes when
        upstream completes, or (``propagate``) when a substream cancels. Fails when
        upstream or ``p`` fails, or (``propagate``) when a substream cancels with a
        failure (``SubscriptionTimeoutError`` included). Cancels when downstream
        cancelled and the current substream ended, or (``propagate``) when a substream
        cancels. Supervision: resume/restart drop the element whose ``p`` raised.
        """
        check("split_when(p)", fn(p))
        from ..._ops.nesting import Split
        from ..._ops.substreams import SubstreamCancelStrategy
        from ..subflow import SubFlow

        cs = (
            SubstreamCancelStrategy.drain
            if substream_cancel_strategy is None
            else substream_cancel_strategy
        )
        sub: SubRepr[Out, Mat] = SubFlow(self._via_stage(Split(p, after=False, cancel_strategy=cs)))
        return sub

    def split_after(
        self,
        p: Callable[[Out], bool],
        substream_cancel_strategy: SubstreamCancelStrategy | None = None,
    ) -> SubRepr[Out, Mat]:
        """End the current substream after each element for which ``p`` holds; returns a
        ``SubFlow``. The element after that one starts a new substream.

        ``substream_cancel_strategy`` works as ``split_when``'s: ``drain`` (default)
        drops a cancelled substream's elements up to the next split; ``propagate``
        cancels the stream.

        Emits when a new substream starts. Backpressures when the current substream does, or
        a new one is pending and downstream backpressures. Completes when upstream completes,
        or (``propagate``) when a substream cancels. Fails when upstream or ``p`` fails, or
        (``propagate``) when a substream cancels with a failure. Cancels when downstream
        cancelled and the current substream ended, or (``propagate``) when a substream
        cancels. Supervision: resume/restart drop the element whose ``p`` raised.
        """
        check("split_after(p)", fn(p))
        from ..._ops.nesting import Split
        from ..._ops.substreams import SubstreamCancelStrategy
        from ..subflow import SubFlow

        cs = (
            SubstreamCancelStrategy.drain
            if substream_cancel_strategy is None
            else substream_cancel_strategy
        )
        sub: SubRepr[Out, Mat] = SubFlow(self._via_stage(Split(p, after=True, cancel_strategy=cs)))
        return sub

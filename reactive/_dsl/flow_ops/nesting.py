"""Operators flattening nested sources (``_ops/nesting.py``).

One family of ``FlowOps`` (``reactive/_dsl/blueprints.py``), the operators shared by
``Source``, ``Flow`` and ``SubFlow``: a mixin whose methods build stages and append them
with the primitives of :class:`~._base.OpsBase`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..._checks import (
    check,
    fn,
    integer,
    pos_int,
)
from ._base import Mat, OpsBase, Out, Repr, U

if TYPE_CHECKING:
    from ..._keep import NotUsedType
    from ..blueprints import Source

__all__ = ["NestingOps"]


class NestingOps(OpsBase[Out, Mat]):
    """Operators flattening nested sources (``_ops/nesting.py``)."""

    __slots__ = ()

    def flat_map_concat(self, f: Callable[[Out], Source[U, Any]]) -> Repr[U, Mat]:
        """Turn each element into a Source with ``f`` and emit their elements one source
        after another (only one inner source is consumed at a time).

        Emits when the current inner source has an element. Backpressures when downstream
        does. Completes when upstream and the last inner source completed. Fails when
        upstream, ``f`` or an inner source fails. Cancels when downstream cancels.
        Supervision: resume/restart drop the element whose ``f`` raised.
        """
        check("flat_map_concat(f)", fn(f))
        from ..._ops.nesting import FlatMapMerge

        return self._via_stage(FlatMapMerge(1, f, name="flat_map_concat"))

    def flat_map_merge(self, breadth: int, f: Callable[[Out], Source[U, Any]]) -> Repr[U, Mat]:
        """Turn each element into a Source with ``f``; consume up to ``breadth`` of them
        at once, emitting elements as they arrive (order kept within one source).

        Emits when any inner source has an element. Backpressures when downstream does;
        stops pulling upstream while ``breadth`` sources are active (one that completed
        counts until the elements it handed over were emitted). Completes when
        upstream and every inner source completed. Fails when upstream, ``f`` or an inner
        source fails. Cancels when downstream cancels. Supervision: resume/restart drop the
        element whose ``f`` raised.
        """
        check("flat_map_merge(breadth, f)", pos_int(breadth), fn(f))
        from ..._ops.nesting import FlatMapMerge

        return self._via_stage(FlatMapMerge(breadth, f))

    def switch_map(self, f: Callable[[Out], Source[U, Any]]) -> Repr[U, Mat]:
        """Flat-map to the latest source only (``flat_map_latest``): each new element
        cancels the inner source in use and switches to ``f(element)``.

        Emits when the current inner source has an element. Backpressures never towards
        upstream (it is always pulled; downstream backpressure applies to the inner source).
        Completes when upstream completed and the current inner source completed. Fails
        when upstream, ``f`` or the current inner source fails. Cancels when downstream
        cancels. Supervision: resume/restart drop the element whose ``f`` raised.
        """
        check("switch_map(f)", fn(f))
        from ..._ops.nesting import SwitchMap

        return self._via_stage(SwitchMap(f))

    def prefix_and_tail(self, n: int) -> Repr[tuple[list[Out], Source[Out, NotUsedType]], Mat]:
        """Emit one pair ``(first n elements as a list, Source of the rest)``, then
        complete. ``n <= 0`` gives ``([], whole stream)``; a shorter stream gives
        ``(all elements, empty Source)``. The tail must be materialized once, within the
        subscription timeout (5 s), else it fails with ``SubscriptionTimeoutError``.

        Emits when ``n`` elements arrived (or upstream completed). Backpressures when
        downstream does (then: when the tail's consumer does). Completes when the pair was
        emitted (the tail goes on). Fails when upstream fails before the pair (afterwards the
        tail fails). Cancels when downstream cancels before the pair, or the tail is cancelled.
        """
        check("prefix_and_tail(n)", integer(n))
        from ..._ops.nesting import PrefixAndTail

        return self._via_stage(PrefixAndTail(n))

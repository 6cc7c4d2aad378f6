"""Operators joining another source (``_ops/fan_in/``): zip, merge, concat, interleave, ...

One family of ``FlowOps`` (``reactive/_dsl/blueprints.py``), the operators shared by
``Source``, ``Flow`` and ``SubFlow``: a mixin whose methods build stages and append them
with the primitives of :class:`~._base.OpsBase`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

from ..._checks import (
    check,
    fn,
    iterable,
    opt_fn,
    pos_int,
)
from ..._keep import Keep
from ..graph import _module_of
from ._base import M2, M3, Mat, OpsBase, Out, Repr, T, U, V

if TYPE_CHECKING:
    from ..blueprints import Source

__all__ = ["FanInOps"]


class FanInOps(OpsBase[Out, Mat]):
    """Operators joining another source (``_ops/fan_in/``): zip, merge, concat, interleave, ..."""

    __slots__ = ()

    def zip(self, other: Source[U, Any]) -> Repr[tuple[Out, U], Mat]:
        """Pairs ``(a, b)`` of this and ``other``; completes when either completes.

        Emits when both sides have an element and downstream pulls. Backpressures when
        downstream does (a side that delivered waits for the other). Completes when either
        side completes (after a pair it still holds; a lone element of the other side is
        dropped). Fails when either side fails. Cancels when downstream cancels.
        """
        from ..._ops.fan_in import Zip

        return self._fan_in([other], Zip(), None)

    def zip_mat(
        self, other: Source[U, M2], combine: Callable[[Mat, M2], M3]
    ) -> Repr[tuple[Out, U], M3]:
        """``zip`` combining materialized values.

        Emits when both sides have an element and downstream pulls. Backpressures when
        downstream does. Completes when either side completes. Fails when either side fails.
        Cancels when downstream cancels.
        """
        check("zip_mat(other, combine)", None, fn(combine))
        from ..._ops.fan_in import Zip

        return self._fan_in([other], Zip(), combine)

    def zip_with(self, other: Source[U, Any], f: Callable[[Out, U], V]) -> Repr[V, Mat]:
        """``f(a, b)`` for pairs of this and ``other``.

        Emits when both sides have an element and downstream pulls. Backpressures when
        downstream does. Completes when either side completes (after a combination it still
        holds). Fails when either side fails or ``f`` raises. Cancels when downstream
        cancels.
        """
        check("zip_with(other, f)", None, fn(f))
        from ..._ops.fan_in import ZipWith

        return self._fan_in([other], ZipWith(f), None)

    def merge(self, other: Source[U, Any], eager_complete: bool = False) -> Repr[Out | U, Mat]:
        """Elements of this and ``other`` as they arrive.

        Ready inputs are served in arrival (FIFO) order. With ``eager_complete`` the first
        side to complete completes the stream: the other is cancelled and an element waiting
        on it is dropped.

        Emits when either side has an element. Backpressures when downstream does. Completes
        when both completed (either, with ``eager_complete``). Fails when either fails.
        Cancels when downstream cancels.
        """
        from ..._ops.fan_in import Merge

        return self._fan_in([other], Merge(2, eager_complete), None)

    def merge_mat(
        self, other: Source[U, M2], combine: Callable[[Mat, M2], M3], eager_complete: bool = False
    ) -> Repr[Out | U, M3]:
        """``merge`` combining materialized values.

        Emits when either side has an element. Backpressures when downstream does. Completes
        when both completed (either, with ``eager_complete``). Fails when either fails.
        Cancels when downstream cancels.
        """
        check("merge_mat(other, combine)", None, fn(combine))
        from ..._ops.fan_in import Merge

        return self._fan_in([other], Merge(2, eager_complete), combine)

    def concat(self, other: Source[U, Any]) -> Repr[Out | U, Mat]:
        """All of this, then all of ``other`` (both materialized at once).

        Both inputs are pulled at start (detached: one element waits on each); use
        ``concat_lazy`` to pull ``other`` only once this completed.

        Emits when the current input has an element. Backpressures when downstream does.
        Completes when both completed. Fails when either fails. Cancels when downstream
        cancels.
        """
        from ..._ops.fan_in import Concat

        return self._fan_in([other], Concat(2), None)

    def concat_mat(
        self, other: Source[U, M2], combine: Callable[[Mat, M2], M3]
    ) -> Repr[Out | U, M3]:
        """``concat`` combining materialized values.

        Emits when the current input has an element. Backpressures when downstream does.
        Completes when both completed. Fails when either fails. Cancels when downstream
        cancels.
        """
        check("concat_mat(other, combine)", None, fn(combine))
        from ..._ops.fan_in import Concat

        return self._fan_in([other], Concat(2), combine)

    def prepend(self, other: Source[U, Any]) -> Repr[Out | U, Mat]:
        """All of ``other``, then all of this.

        Both inputs are pulled at start (detached, as ``concat``); ``prepend_lazy`` pulls
        this only once ``other`` completed.

        Emits when the current input has an element. Backpressures when downstream does.
        Completes when both completed. Fails when either fails. Cancels when downstream
        cancels.
        """
        from ..._ops.fan_in import Concat

        mine = self.module
        if mine.shape.inlets:
            # Flow: ``other`` first, then this flow's output.
            return self._fan_in([other], Concat(2, swap=True), None)
        from ..blueprints import Source

        # the stubs' Source is no OpsBase to mypy: Repr stands for it
        return cast(
            "Repr[Out | U, Mat]",
            Source(_module_of(other))._fan_in([self], Concat(2), lambda a, b: b),
        )

    def prepend_mat(
        self, other: Source[U, M2], combine: Callable[[Mat, M2], M3]
    ) -> Repr[Out | U, M3]:
        """``prepend`` combining materialized values.

        Emits when the current input has an element. Backpressures when downstream does.
        Completes when both completed. Fails when either fails. Cancels when downstream
        cancels.
        """
        check("prepend_mat(other, combine)", None, fn(combine))
        from ..._ops.fan_in import Concat

        return self._fan_in([other], Concat(2, swap=True), combine)

    def zip_latest(self, other: Source[U, Any]) -> Repr[tuple[Out, U], Mat]:
        """Pairs ``(a, b)`` of the latest elements of this and ``other``, once both emitted,
        on every new element of either; completes when either completes.

        Emits when both sides delivered at least once, one of them delivered a new element
        since the last pair, and downstream pulls. Backpressures when downstream does (a side
        is pulled again only once its element was used). Completes when either side completes
        (at once if it never delivered). Fails when either side fails. Cancels when
        downstream cancels.
        """
        from ..._ops.fan_in import ZipLatest

        return self._fan_in([other], ZipLatest(), None)

    def zip_latest_with(self, other: Source[U, Any], f: Callable[[Out, U], V]) -> Repr[V, Mat]:
        """``f(a, b)`` of the latest elements (see ``zip_latest``).

        Emits when both sides delivered at least once, one of them delivered a new element
        since the last emission, and downstream pulls. Backpressures when downstream does.
        Completes when either side completes. Fails when either side fails or ``f`` raises.
        Cancels when downstream cancels.
        """
        check("zip_latest_with(other, f)", None, fn(f))
        from ..._ops.fan_in import ZipLatestWith

        return self._fan_in([other], ZipLatestWith(f), None)

    def merge_sorted(
        self, other: Source[U, Any], key: Callable[[Any], Any] | None = None
    ) -> Repr[Out | U, Mat]:
        """Merge this sorted stream with the sorted ``other`` into one sorted stream.

        Ordered by ``key(x)`` (the element itself without ``key``); on ties this stream's
        element goes first. Unsorted inputs give an unsorted output (nothing is checked).

        Emits when both sides have an element (the smaller goes out), or one side completed
        (the rest of the other passes through). Backpressures when downstream does. Completes
        when both completed. Fails when either fails or ``key`` raises. Cancels when
        downstream cancels.
        """
        check("merge_sorted(other, key)", None, opt_fn(key))
        from ..._ops.fan_in import MergeSorted

        return self._fan_in([other], MergeSorted(key), None)

    def interleave(
        self, other: Source[U, Any], segment_size: int, eager_close: bool = False
    ) -> Repr[Out | U, Mat]:
        """``segment_size`` elements of this, then of ``other``, in turn; when one side
        completes the rest of the other follows (unless ``eager_close``).

        Both sides are pulled at start (detached inputs, as Akka's ``Interleave``).

        Emits when the current side has an element. Backpressures when downstream does.
        Completes when both completed, or when either completes with ``eager_close``. Fails
        when either fails. Cancels when downstream cancels.
        """
        check("interleave(other, segment_size)", None, pos_int(segment_size))
        from ..._ops.fan_in import Interleave

        return self._fan_in([other], Interleave(2, segment_size, eager_close), None)

    def or_else(self, other: Source[U, Any]) -> Repr[Out | U, Mat]:
        """This stream; if it completes without any element, ``other`` instead.

        Both are materialized at once; ``other`` is cancelled at this stream's first element.

        Emits when the current input has an element. Backpressures when downstream does.
        Completes when this stream completes after emitting at least one element, or when
        ``other`` completes. Fails when either fails. Cancels when downstream cancels.
        """
        from ..._ops.fan_in import OrElse

        return self._fan_in([other], OrElse(), None)

    def zip_all(
        self, other: Source[U, Any], pad_left: T, pad_right: V
    ) -> Repr[tuple[Out | T, U | V], Mat]:
        """Pairs ``(a, b)`` of this and ``other`` until both complete; the side that
        completed first is padded (``pad_left`` for this one, ``pad_right`` for ``other``).

        Emits when both sides have an element (or one completed) and downstream pulls.
        Backpressures when downstream does. Completes when both completed. Fails when
        either fails. Cancels when downstream cancels. Supervision: does not apply.
        """
        from ..._ops.fan_in import ZipAll

        return self._fan_in([other], ZipAll(pad_left, pad_right), None)

    def concat_lazy(self, other: Source[U, Any]) -> Repr[Out | U, Mat]:
        """All of this, then all of ``other``; ``other`` is materialized at once but
        pulled only once this completed (not eagerly, unlike ``concat``).

        Emits when the current input has an element. Backpressures when downstream does.
        Completes when both completed. Fails when either fails. Cancels when downstream
        cancels.
        """
        from ..._ops.fan_in import Concat

        return self._fan_in([other], Concat(2, detached=False), None)

    def prepend_lazy(self, other: Source[U, Any]) -> Repr[Out | U, Mat]:
        """All of ``other``, then all of this; this is pulled only once ``other``
        completed (both are materialized at once).

        Emits when the current input has an element. Backpressures when downstream does.
        Completes when both completed. Fails when either fails. Cancels when downstream
        cancels.
        """
        from ..._ops.fan_in import Concat

        if self.module.shape.inlets:
            return self._fan_in([other], Concat(2, detached=False, swap=True), None)
        from ..blueprints import Source

        return cast(
            "Repr[Out | U, Mat]",
            Source(_module_of(other))._fan_in([self], Concat(2, detached=False), Keep.right),
        )

    def merge_all(
        self, those: Iterable[Source[U, Any]], eager_complete: bool = False
    ) -> Repr[Out | U, Mat]:
        """Elements of this and every source of ``those`` as they arrive (n-ary ``merge``).

        Ready inputs are served in arrival (FIFO) order. With ``eager_complete`` the first
        input to complete completes the stream: the others are cancelled and an element
        waiting on one of them is dropped.

        Emits when any input has an element. Backpressures when downstream does.
        Completes when all inputs completed (the first, with ``eager_complete``). Fails
        when any input fails. Cancels when downstream cancels.
        """
        check("merge_all(those, eager_complete)", iterable(those))
        from ..._ops.fan_in import Merge

        others = list(those)
        return self._fan_in(others, Merge(len(others) + 1, eager_complete), None, op="merge_all")

    def interleave_all(
        self, those: Iterable[Source[U, Any]], segment_size: int, eager_close: bool = False
    ) -> Repr[Out | U, Mat]:
        """``segment_size`` elements of this, then of each source of ``those`` in turn
        (n-ary ``interleave``); when an input completes the others go on in turn (unless
        ``eager_close``).

        Every input is pulled at start (detached inputs, as Akka's ``Interleave``).

        Emits when the current input has an element. Backpressures when downstream does.
        Completes when all inputs completed, or when any completes with ``eager_close``.
        Fails when any input fails. Cancels when downstream cancels.
        """
        check(
            "interleave_all(those, segment_size, eager_close)",
            iterable(those),
            pos_int(segment_size),
        )
        from ..._ops.fan_in import Interleave

        others = list(those)
        stage = Interleave(len(others) + 1, segment_size, eager_close)
        return self._fan_in(others, stage, None, op="interleave_all")

    def merge_latest(
        self, other: Source[U, Any], eager_complete: bool = False
    ) -> Repr[list[Out | U], Mat]:
        """Once both this and ``other`` emitted, a list ``[latest of this, latest of
        other]`` on every new element of either (Akka's ``mergeLatest``).

        Each arrival is one list, taken when it arrives; an input whose list waits for
        downstream is not pulled again meanwhile. A side completing without having
        emitted completes the stream (no list can come any more).

        Emits when either side delivered an element, both delivered at least once, and
        downstream pulls. Backpressures when downstream does. Completes when both
        completed and the waiting lists went out (either, with ``eager_complete``).
        Fails when either fails. Cancels when downstream cancels.
        """
        from ..._ops.fan_in import MergeLatest

        return self._fan_in([other], MergeLatest(2, eager_complete), None, op="merge_latest")

    def merge_preferred(
        self, other: Source[U, Any], preferred: bool, eager_complete: bool = False
    ) -> Repr[Out | U, Mat]:
        """Merge this and ``other``, the preferred side winning whenever it has an
        element ready (Akka's ``mergePreferred``): ``preferred=True`` prefers ``other``,
        ``False`` this stream. Built on the ``MergePreferred`` junction.

        Emits when either side has an element (the preferred one first). Backpressures
        when downstream does. Completes when both completed (either, with
        ``eager_complete``). Fails when either fails. Cancels when downstream cancels.
        """
        from ..._ops.fan_in import MergePreferred

        if not isinstance(preferred, bool):
            raise TypeError(
                "merge_preferred(that, preferred): preferred must be a bool, got "
                f"{type(preferred).__name__} {preferred!r}"
            )
        stage = MergePreferred(1, eager_complete)
        sec, pref = stage.shape.in_(0), stage.shape.preferred
        order = (sec, pref) if preferred else (pref, sec)
        return self._fan_in([other], stage, None, order, op="merge_preferred")

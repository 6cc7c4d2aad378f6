"""Operators calling async functions (``_ops/async_.py``): map_async and friends.

One family of ``FlowOps`` (``reactive/_dsl/blueprints.py``), the operators shared by
``Source``, ``Flow`` and ``SubFlow``: a mixin whose methods build stages and append them
with the primitives of :class:`~._base.OpsBase`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from ..._checks import (
    check,
    element,
    fn,
    pos_int,
)
from ._base import Mat, OpsBase, Out, Repr, U

__all__ = ["AsyncOps"]


class AsyncOps(OpsBase[Out, Mat]):
    """Operators calling async functions (``_ops/async_.py``): map_async and friends."""

    __slots__ = ()

    def map_async(self, parallelism: int, f: Callable[[Out], Awaitable[U]]) -> Repr[U, Mat]:
        """Run ``f`` on up to ``parallelism`` elements at once; emit results in input order.

        ``f`` is called in element order; a result of None is skipped.

        Emits when the oldest call's result is ready and downstream pulls. Backpressures when
        ``parallelism`` calls are in flight or waiting to be emitted. Completes when upstream
        completed and every result was emitted. Fails when upstream fails, or ``f`` raises or
        its awaitable fails under ``stop``. Cancels when downstream cancels (calls in flight
        are cancelled). Supervision: resume/restart drop the element.
        """
        check("map_async(parallelism, f)", pos_int(parallelism), fn(f))
        from ..._ops.async_ import MapAsync

        return self._via_stage(MapAsync(parallelism, f, ordered=True))

    def map_async_unordered(
        self, parallelism: int, f: Callable[[Out], Awaitable[U]]
    ) -> Repr[U, Mat]:
        """Like ``map_async`` but emit results as they complete.

        Emits when any call's result is ready and downstream pulls (None results are skipped).
        Backpressures when ``parallelism`` calls are in flight or waiting to be emitted.
        Completes when upstream completed and every result was emitted. Fails when upstream
        fails, or ``f`` raises or its awaitable fails under ``stop``. Cancels when downstream
        cancels. Supervision: resume/restart drop the element.
        """
        check("map_async_unordered(parallelism, f)", pos_int(parallelism), fn(f))
        from ..._ops.async_ import MapAsync

        return self._via_stage(MapAsync(parallelism, f, ordered=False))

    def scan_async(self, zero: U, f: Callable[[U, Out], Awaitable[U]]) -> Repr[U, Mat]:
        """``scan`` with an async step function.

        One step runs at a time. Emits when the zero is pulled first, then when each step's
        awaitable completes and downstream pulls. Backpressures when downstream does or a step
        runs. Completes when upstream completed and the last step finished. Fails when
        upstream fails, or ``f`` raises or its awaitable fails under ``stop``. Cancels when
        downstream cancels. Supervision: resume drops the element; restart also resets the
        accumulator to ``zero`` (not emitted again).
        """
        check("scan_async(zero, f)", element(zero), fn(f))
        from ..._ops.async_ import ScanAsync

        return self._via_stage(ScanAsync(zero, f, emit_each=True))

    def fold_async(self, zero: U, f: Callable[[U, Out], Awaitable[U]]) -> Repr[U, Mat]:
        """``fold`` with an async step function.

        One step runs at a time. Emits when upstream completed, the last step finished and
        downstream pulls (one element). Backpressures when a step runs. Completes when upstream
        completes (after the element). Fails when upstream fails, or ``f`` raises or its
        awaitable fails under ``stop``. Cancels when downstream cancels. Supervision: resume
        drops the element; restart also resets the accumulator to ``zero``.
        """
        check("fold_async(zero, f)", None, fn(f))
        from ..._ops.async_ import ScanAsync

        return self._via_stage(ScanAsync(zero, f, emit_each=False))

    def map_async_partitioned(
        self,
        parallelism: int,
        per_partition: int,
        partitioner: Callable[[Out], Hashable],
        f: Callable[[Out, Any], Awaitable[U]],
    ) -> Repr[U, Mat]:
        """Run ``f(x, partitioner(x))`` for at most ``per_partition`` elements of one key
        and ``parallelism`` elements overall at once; emit results in input order.

        ``None`` results are skipped. Up to ``parallelism`` elements are buffered, also
        while their key is saturated.

        Emits when the oldest element's result is ready and downstream pulls.
        Backpressures when ``parallelism`` elements are buffered. Completes when upstream
        completed and every result was emitted. Fails when upstream fails, or ``f`` or
        ``partitioner`` fails under the stopping decider. Cancels when downstream cancels.
        Supervision: resume and restart drop the element.
        """
        check(
            "map_async_partitioned(parallelism, per_partition, partitioner, f)",
            pos_int(parallelism),
            pos_int(per_partition),
            fn(partitioner),
            fn(f),
        )
        from ..._ops.async_ import MapAsyncPartitioned

        return self._via_stage(MapAsyncPartitioned(parallelism, per_partition, partitioner, f))

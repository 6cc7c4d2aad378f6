"""SubFlow: the operators applied to each substream of ``group_by`` / ``split_*``.

A ``SubFlow`` pairs the parent blueprint (a Source or Flow emitting one Source per
substream) with the per-substream ``Flow`` built so far. Every ``FlowOps`` operator
appends to that per-substream flow (``_via_module``); the exits say how substreams rejoin:
``merge_substreams()``, ``merge_substreams_with_parallelism(n)``,
``concat_substreams()``, or ``to(sink)`` (each substream into its own copy of ``sink``).
As in Akka, substreams cannot contribute to the materialized value: it stays the
parent's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from .._checks import check, pos_int
from .._impl.modules import Module
from .._keep import Keep
from .blueprints import Flow, FlowOps, Source
from .graph import _module_of

__all__ = ["SubFlow"]

_UNBOUNDED = 1 << 62


class SubFlow(FlowOps[Any, Any]):
    """Operators applied to every substream; leave with a ``merge``/``concat``/``to`` exit."""

    __slots__ = ("_parent",)

    def __class_getitem__(cls, item: Any) -> Any:
        # Typed as SubFlow[Out, Mat, Ctx] in subflow.pyi; subscriptable at runtime too.
        return cls

    def __init__(self, parent: Any, flow: Flow[Any, Any, Any] | None = None) -> None:
        super().__init__((flow if flow is not None else Flow()).module)
        self._parent = parent

    # -- appending: everything goes to the per-substream flow -----------------------------
    def _via_module(self, module: Module, combine: Callable[[Any, Any], Any]) -> Any:
        # Substreams are materialized at runtime: their values cannot reach the parent's.
        return SubFlow(self._parent, Flow(self.module)._via_module(module, Keep.left))

    def _wrap(self, module: Module) -> Any:
        return SubFlow(self._parent, Flow(module))

    @property
    def substream_flow(self) -> Flow[Any, Any, Any]:
        """The Flow applied to each substream."""
        return Flow(self.module)

    # -- exits ------------------------------------------------------------------------------
    def _flatten(self, breadth: int, name: str) -> Any:
        from .._ops.nesting import FlatMapMerge

        flow = self.substream_flow

        def attach(src: Any) -> Any:
            return Source(_module_of(src)).via(flow)

        return self._parent._via_stage(FlatMapMerge(breadth, attach, name=name))

    def merge_substreams(self) -> Any:
        """Flatten the substreams, taking elements as they come (unbounded parallelism).

        Emits when any substream has an element. Backpressures when downstream does.
        Completes when the parent and every substream completed. Fails when the parent
        or any substream fails. Cancels when downstream cancels.
        """
        return self._flatten(_UNBOUNDED, "merge_substreams")

    def merge_substreams_with_parallelism(self, parallelism: int) -> Any:
        """Like ``merge_substreams`` but consume at most ``parallelism`` substreams at
        once (more live keys than that can deadlock ``group_by``, as in Akka).

        Emits when any running substream has an element. Backpressures when downstream does;
        no further substream is started while ``parallelism`` run. Completes when the parent
        and every substream completed. Fails when the parent or any substream fails. Cancels
        when downstream cancels.
        """
        check("merge_substreams_with_parallelism(parallelism)", pos_int(parallelism))
        return self._flatten(parallelism, "merge_substreams")

    def concat_substreams(self) -> Any:
        """Flatten the substreams one after another (``parallelism == 1``).

        A substream is consumed only once the one before it completed (with ``group_by``,
        an element of a second key while the first substream is open can deadlock, as in
        Akka).

        Emits when the current substream has an element. Backpressures when downstream does.
        Completes when the parent and every substream completed. Fails when the parent or any
        substream fails. Cancels when downstream cancels.
        """
        return self._flatten(1, "concat_substreams")

    def to(self, sink: Any) -> Any:
        """Run each substream into its own materialization of ``sink``; returns the
        parent's kind of blueprint closed (a RunnableGraph for a Source parent, a Sink for
        a Flow parent) with the parent's materialized value.

        Every substream runs as its own graph, started when the parent emits it.
        Backpressures when the sink of the substream an element belongs to backpressures.
        Cancels never towards the parent: a sink that cancels ends only its own substream
        (``group_by`` drops that key's later elements; ``split_*`` drain to the next split).
        """
        from .._ops.nesting import SubstreamsSink
        from .blueprints import Sink

        flow = self.substream_flow
        sink_module = _module_of(sink)

        def run(src: Any) -> Any:
            through = cast("Source[Any, Any]", Source(_module_of(src)).via(flow))
            return through.to(Sink(sink_module))

        return self._parent.to(Sink(_module_of(SubstreamsSink(run))))

    def __repr__(self) -> str:
        return f"SubFlow({self.module.shape!r})"

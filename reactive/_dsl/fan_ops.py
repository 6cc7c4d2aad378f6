"""Module builders behind the fluent fan-out operators and ``Source``/``Sink.combine``.

They build ``CompositeModule``s directly (what a GraphDSL blueprint would produce), so
appending ``also_to``/``wire_tap``/``divert_to`` stays O(1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._errors import IllegalGraphError
from .._impl.modules import AtomicModule, CompositeModule, Module
from .._keep import NotUsed
from .._stage.shapes import FlowShape, Shape, SinkShape, SourceShape

__all__ = ["side_output", "combine_sinks"]


def side_output(
    mine: Module,
    stage: Any,
    sink: Module,
    combine: Callable[[Any, Any], Any] | None,
    op: str = "fan-out",
) -> CompositeModule:
    """``mine`` -> ``stage`` (one inlet, two outlets); outlet 0 stays open (the main line),
    outlet 1 feeds ``sink``. The value is ``mine``'s, or ``combine(mine, sink)``."""
    if len(mine.shape.outlets) != 1:
        raise IllegalGraphError(
            f"{op} needs a blueprint with exactly one outlet, got {mine.shape!r}"
        )
    if len(sink.shape.inlets) != 1 or sink.shape.outlets:
        raise IllegalGraphError(f"{op} needs a Sink, got {sink.shape!r}")
    s_in = stage.shape.inlets[0]
    main, side = stage.shape.outlets
    subs = [mine, AtomicModule(stage), sink]
    wires = [((0, mine.shape.outlets[0]), (1, s_in)), ((1, side), (2, sink.shape.inlets[0]))]
    new_ins = tuple(p.carbon_copy() for p in mine.shape.inlets)
    new_out = main.carbon_copy()
    exposed: dict[Any, Any] = {p: (0, q) for p, q in zip(new_ins, mine.shape.inlets, strict=True)}
    exposed[new_out] = (1, main)
    shape: Shape = FlowShape(new_ins[0], new_out) if new_ins else SourceShape(new_out)
    if combine is None:

        def mat_fn(mats: list[Any]) -> Any:
            return mats[0]
    else:

        def mat_fn(mats: list[Any]) -> Any:
            return combine(mats[0], mats[2])

    return CompositeModule(shape, subs, wires, exposed, mat_fn)


def combine_sinks(sinks: list[Module], stage: Any) -> CompositeModule:
    """One inlet feeding ``stage`` (a fan-out with ``len(sinks)`` outlets), each outlet
    feeding one sink. The value is ``NotUsed``, as Akka's ``Sink.combine``."""
    outs = stage.shape.outlets
    if len(stage.shape.inlets) != 1 or len(outs) != len(sinks):
        raise IllegalGraphError(
            f"Sink.combine strategy must give one inlet and {len(sinks)} outlets, "
            f"got {stage.shape!r}"
        )
    subs: list[Module] = [AtomicModule(stage)]
    wires = []
    for k, s in enumerate(sinks, start=1):
        if len(s.shape.inlets) != 1 or s.shape.outlets:
            raise IllegalGraphError(f"Sink.combine input {k - 1} must be a Sink, got {s.shape!r}")
        subs.append(s)
        wires.append(((0, outs[k - 1]), (k, s.shape.inlets[0])))
    new_in = stage.shape.inlets[0].carbon_copy()
    exposed = {new_in: (0, stage.shape.inlets[0])}
    return CompositeModule(SinkShape(new_in), subs, wires, exposed, lambda mats: NotUsed)

"""The custom stage API: write your own ``GraphStage`` with any number of ports.

A ``GraphStage`` is an immutable description with a ``shape``; ``create_logic`` returns
a fresh ``GraphStageLogic`` per materialization. See ``GraphStageLogic`` for the port
actions and when each is legal.
"""

from ._errors import (
    NO_MORE_ELEMENTS_NEEDED,
    STAGE_WAS_COMPLETED,
    MissingHandlerError,
    NoMoreElementsNeeded,
    PortStateError,
    StageWasCompleted,
    SubscriptionWithCancelError,
)
from ._ops.substreams import SubSinkInlet, SubSourceOutlet
from ._public import publish as _publish
from ._stage.logic import (
    EAGER_TERMINATE_INPUT,
    EAGER_TERMINATE_OUTPUT,
    IGNORE_TERMINATE_INPUT,
    IGNORE_TERMINATE_OUTPUT,
    TOTALLY_IGNORANT_INPUT,
    AsyncCallback,
    GraphStage,
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    OutHandler,
    StageLogging,
    TimerGraphStageLogic,
)
from ._stage.shapes import (
    AmorphousShape,
    BidiShape,
    ClosedShape,
    FanInShape2,
    FanInShapeN,
    FanOutShape2,
    FlowShape,
    Inlet,
    Outlet,
    Shape,
    SinkShape,
    SourceShape,
    UniformFanInShape,
    UniformFanOutShape,
)

__all__ = [
    "AmorphousShape",
    "AsyncCallback",
    "BidiShape",
    "ClosedShape",
    "EAGER_TERMINATE_INPUT",
    "EAGER_TERMINATE_OUTPUT",
    "FanInShape2",
    "FanInShapeN",
    "FanOutShape2",
    "FlowShape",
    "GraphStage",
    "GraphStageLogic",
    "GraphStageWithMaterializedValue",
    "IGNORE_TERMINATE_INPUT",
    "IGNORE_TERMINATE_OUTPUT",
    "InHandler",
    "Inlet",
    "MissingHandlerError",
    "NO_MORE_ELEMENTS_NEEDED",
    "NoMoreElementsNeeded",
    "OutHandler",
    "Outlet",
    "PortStateError",
    "STAGE_WAS_COMPLETED",
    "Shape",
    "SinkShape",
    "SourceShape",
    "StageLogging",
    "StageWasCompleted",
    "SubSinkInlet",
    "SubSourceOutlet",
    "SubscriptionWithCancelError",
    "TOTALLY_IGNORANT_INPUT",
    "TimerGraphStageLogic",
    "UniformFanInShape",
    "UniformFanOutShape",
]

_publish(__name__, globals())

"""reactive: Akka Streams for asyncio.

Blueprints (``Source``, ``Flow``, ``Sink``, ``RunnableGraph``) describe streams; running
one (``run()``, ``run_with()``) materializes it into stage logics fused into islands,
each driven by one asyncio task, with Reactive Streams back pressure throughout.

Map of the package:

- ``reactive`` (this module): the public names of the DSL.
- ``reactive.stage``: the custom stage API (``GraphStage``, ``GraphStageLogic``, ...).
- ``reactive.testkit``: probes and a manual clock for tests; also a pytest plugin.
- ``reactive._dsl``: blueprints and the operator methods (no behaviour).
- ``reactive._ops``: operator implementations, one module per family.
- ``reactive._impl``: interpreter, islands, boundaries, materializer, clock seam.
"""

from ._attributes import Attributes
from ._dsl.blueprints import Flow, RunnableGraph, Sink, Source
from ._dsl.keep import Done, Keep, NotUsed
from ._errors import (
    AbruptTerminationError,
    BufferOverflowError,
    IllegalGraphError,
    NeverMaterializedError,
    NoSuchElementError,
    PortStateError,
    RateExceededError,
    StreamError,
    StreamLimitReachedError,
    StreamTimeoutError,
    SubscriptionTimeoutError,
    TooManySubstreamsError,
)
from ._impl.materializer import Materializer
from ._ops.buffers import OverflowStrategy
from ._ops.fan_in import Concat, Merge, Zip, ZipN, ZipWith
from ._ops.killswitch import KillSwitches, SharedKillSwitch, UniqueKillSwitch
from ._ops.sources import Cancellable
from ._ops.watch import FlowMonitor, FlowMonitorState
from ._stage.shapes import ClosedShape, FlowShape, SinkShape, SourceShape
from ._supervision import Supervision

__all__ = [
    "AbruptTerminationError",
    "Attributes",
    "BufferOverflowError",
    "Cancellable",
    "ClosedShape",
    "Concat",
    "Done",
    "Flow",
    "FlowMonitor",
    "FlowMonitorState",
    "FlowShape",
    "IllegalGraphError",
    "Keep",
    "KillSwitches",
    "Materializer",
    "Merge",
    "NeverMaterializedError",
    "NoSuchElementError",
    "NotUsed",
    "OverflowStrategy",
    "PortStateError",
    "RateExceededError",
    "RunnableGraph",
    "SharedKillSwitch",
    "Sink",
    "SinkShape",
    "Source",
    "SourceShape",
    "StreamError",
    "StreamLimitReachedError",
    "StreamTimeoutError",
    "SubscriptionTimeoutError",
    "Supervision",
    "TooManySubstreamsError",
    "UniqueKillSwitch",
    "Zip",
    "ZipN",
    "ZipWith",
]

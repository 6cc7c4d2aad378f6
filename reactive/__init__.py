"""reactive: Akka Streams for asyncio.

Blueprints (``Source``, ``Flow``, ``Sink``, ``RunnableGraph``) describe streams; running
one (``run()``, ``run_with()``) materializes it into stage logics fused into islands,
each driven by one asyncio task, with Reactive Streams back pressure throughout.

Map of the package:

- ``reactive`` (this module): the public names of the DSL.
- ``reactive.stage``: the custom stage API (``GraphStage``, ``GraphStageLogic``, ...).
- ``reactive.testkit``: probes and a manual clock for tests; also a pytest plugin.
- ``reactive.state``: key-value stores (in memory, RocksDB) for the keyed operators.
- ``reactive.observe``: snapshots of running streams, per-stage metrics, the bottleneck
  finder, Prometheus/OpenTelemetry export and a live terminal view.
- ``reactive._dsl``: blueprints and the operator methods (no behaviour).
- ``reactive._ops``: operator implementations, one module per family.
- ``reactive._impl``: interpreter, islands, boundaries, materializer, clock seam.
"""

from ._attributes import Attributes, NestedMaterializationCancellationPolicy
from ._dsl.bidi import BidiFlow
from ._dsl.blueprints import Flow, RunnableGraph, Sink, Source
from ._dsl.graph_dsl import GraphDSL
from ._dsl.hubs import BroadcastHub, MergeHub, PartitionHub
from ._dsl.killswitches import KillSwitches
from ._dsl.restart import RestartFlow, RestartSink, RestartSource, RetryFlow
from ._dsl.with_context import FlowWithContext, SourceWithContext
from ._errors import (
    AbruptTerminationError,
    AsyncCallCancelledError,
    BackpressureTimeoutError,
    BufferOverflowError,
    CompletionTimeoutError,
    IllegalGraphError,
    InitialTimeoutError,
    MaterializerShutdownError,
    NeverMaterializedError,
    NoneElementError,
    NoSuchElementError,
    PortStateError,
    RateExceededError,
    RetryFlowError,
    StreamDetachedError,
    StreamError,
    StreamIdleTimeoutError,
    StreamLimitReachedError,
    StreamTimeoutError,
    SubscriptionTimeoutError,
    TooManySubstreamsError,
)
from ._impl.materializer import Materializer
from ._keep import Done, Keep, NotUsed
from ._ops.buffers import OverflowStrategy
from ._ops.delays import DelayOverflowStrategy, DelayStrategy
from ._ops.fan_in import (
    Concat,
    Interleave,
    Merge,
    MergeLatest,
    MergePreferred,
    MergePrioritized,
    MergeSorted,
    OrElse,
    Zip,
    ZipLatest,
    ZipLatestWith,
    ZipN,
    ZipWith,
    ZipWithN,
)
from ._ops.fan_out import (
    Balance,
    Broadcast,
    Partition,
    PartitionOutOfBoundsError,
    Unzip,
    UnzipWith,
)
from ._ops.killswitch import SharedKillSwitch, UniqueKillSwitch
from ._ops.queues import QueueConcurrencyError, QueueOfferResult, SinkQueue, SourceQueue
from ._ops.restart import RestartSettings
from ._ops.sources import Cancellable
from ._ops.substreams import SubstreamCancelStrategy
from ._ops.timer import ThrottleMode
from ._ops.watch import FlowMonitor, FlowMonitorState
from ._ops.window_specs import (
    EmitStrategy,
    SessionWindows,
    SlidingWindows,
    TimeWindows,
    Windowed,
)
from ._public import publish as _publish
from ._stage.shapes import ClosedShape, FlowShape, SinkShape, SourceShape
from ._supervision import Supervision
from ._version import __version__ as __version__

__all__ = [
    "AbruptTerminationError",
    "AsyncCallCancelledError",
    "StreamDetachedError",
    "Attributes",
    "BidiFlow",
    "BroadcastHub",
    "BufferOverflowError",
    "Cancellable",
    "ClosedShape",
    "Concat",
    "DelayOverflowStrategy",
    "DelayStrategy",
    "Done",
    "Flow",
    "FlowMonitor",
    "FlowMonitorState",
    "FlowWithContext",
    "FlowShape",
    "IllegalGraphError",
    "Keep",
    "KillSwitches",
    "Materializer",
    "MaterializerShutdownError",
    "Merge",
    "MergeHub",
    "NeverMaterializedError",
    "NestedMaterializationCancellationPolicy",
    "NoSuchElementError",
    "NoneElementError",
    "NotUsed",
    "OverflowStrategy",
    "PartitionHub",
    "PortStateError",
    "QueueConcurrencyError",
    "QueueOfferResult",
    "RateExceededError",
    "RestartFlow",
    "RestartSettings",
    "RestartSink",
    "RestartSource",
    "RetryFlow",
    "RetryFlowError",
    "RunnableGraph",
    "SharedKillSwitch",
    "Sink",
    "SinkQueue",
    "SinkShape",
    "Source",
    "SourceQueue",
    "SourceShape",
    "SourceWithContext",
    "StreamError",
    "StreamLimitReachedError",
    "StreamTimeoutError",
    "InitialTimeoutError",
    "CompletionTimeoutError",
    "StreamIdleTimeoutError",
    "BackpressureTimeoutError",
    "SubscriptionTimeoutError",
    "SubstreamCancelStrategy",
    "Supervision",
    "ThrottleMode",
    "TooManySubstreamsError",
    "UniqueKillSwitch",
    "Zip",
    "ZipN",
    "ZipWith",
    "Balance",
    "Broadcast",
    "GraphDSL",
    "Interleave",
    "MergeLatest",
    "MergePreferred",
    "MergePrioritized",
    "MergeSorted",
    "OrElse",
    "Partition",
    "PartitionOutOfBoundsError",
    "Unzip",
    "UnzipWith",
    "ZipLatest",
    "ZipLatestWith",
    "ZipWithN",
    "EmitStrategy",
    "SessionWindows",
    "SlidingWindows",
    "TimeWindows",
    "Windowed",
]

_publish(__name__, globals())

"""The public surface: exported names are pinned, exist, are documented, and typed.

Adding a public name is a deliberate act: add it to the ``__all__`` of its module *and* to
the pinned list here (as trio and httpx test their exports).
"""

from __future__ import annotations

import importlib
import inspect
import tomllib
from pathlib import Path

import pytest

import reactive

REACTIVE = [
    "AbruptTerminationError", "AsyncCallCancelledError", "Attributes", "BackpressureTimeoutError",
    "Balance", "BidiFlow",
    "Broadcast",
    "BroadcastHub",
    "BufferOverflowError", "Cancellable", "ClosedShape", "CompletionTimeoutError", "Concat",
    "DelayOverflowStrategy", "DelayStrategy", "Done",
    "EmitStrategy",
    "Flow",
    "FlowMonitor", "FlowMonitorState", "FlowShape", "FlowWithContext", "GraphDSL",
    "IllegalGraphError", "InitialTimeoutError",
    "Interleave", "Keep", "KillSwitches", "Materializer", "MaterializerShutdownError", "Merge",
    "MergeHub", "MergeLatest",
    "MergePreferred", "MergePrioritized", "MergeSorted", "NestedMaterializationCancellationPolicy",
    "NeverMaterializedError",
    "NoSuchElementError", "NoneElementError", "NotUsed", "OrElse", "OverflowStrategy", "Partition",
    "PartitionHub", "PartitionOutOfBoundsError", "PortStateError", "QueueConcurrencyError",
    "QueueOfferResult",
    "RateExceededError", "RestartFlow", "RestartSettings", "RestartSink", "RestartSource",
    "RetryFlow", "RetryFlowError", "RunnableGraph", "SessionWindows", "SharedKillSwitch",
    "Sink", "SinkQueue",
    "SinkShape", "SlidingWindows", "Source",
    "SourceQueue", "SourceShape", "SourceWithContext", "StreamDetachedError", "StreamError",
    "StreamIdleTimeoutError", "StreamLimitReachedError", "StreamTimeoutError",
    "SubscriptionTimeoutError", "SubstreamCancelStrategy", "Supervision", "ThrottleMode",
    "TimeWindows", "TooManySubstreamsError", "UniqueKillSwitch", "Unzip", "UnzipWith",
    "Windowed", "Zip", "ZipLatest", "ZipLatestWith", "ZipN", "ZipWith", "ZipWithN",
]  # fmt: skip

STAGE = [
    "AmorphousShape", "AsyncCallback", "BidiShape", "ClosedShape", "EAGER_TERMINATE_INPUT",
    "EAGER_TERMINATE_OUTPUT", "FanInShape2", "FanInShapeN", "FanOutShape2", "FlowShape",
    "GraphStage", "GraphStageLogic", "GraphStageWithMaterializedValue",
    "IGNORE_TERMINATE_INPUT", "IGNORE_TERMINATE_OUTPUT", "InHandler", "Inlet",
    "MissingHandlerError", "NO_MORE_ELEMENTS_NEEDED", "NoMoreElementsNeeded", "OutHandler",
    "Outlet",
    "PortStateError", "STAGE_WAS_COMPLETED", "Shape", "SinkShape", "SourceShape",
    "StageLogging", "StageWasCompleted", "SubSinkInlet", "SubSourceOutlet",
    "SubscriptionWithCancelError",
    "TOTALLY_IGNORANT_INPUT", "TimerGraphStageLogic", "UniformFanInShape",
    "UniformFanOutShape",
]  # fmt: skip

TESTKIT = [
    "ExpectationError", "ManualClock", "PublisherProbe", "SubscriberProbe", "TestSink",
    "TestSource",
]  # fmt: skip

STATE = [
    "BytesStore", "DEFAULT_CACHE_SIZE", "InMemoryBytesStore", "KeySerdeError",
    "KeyValueStore", "MsgpackSerde",
    "OrderedKeySerde", "OwnershipNotReadyError", "ReadOnlyKeyValueStore", "RocksDBBytesStore",
    "Serde", "StateRegistry",
    "StoreClosedError", "StoreContext", "StoreLayer", "StoreSpec", "StoreView", "Stores",
    "WindowStoreView", "WriteBatch",
    "registry_of",
]  # fmt: skip

PINNED = {
    "reactive": REACTIVE,
    "reactive.stage": STAGE,
    "reactive.testkit": TESTKIT,
    "reactive.state": STATE,
}


@pytest.mark.parametrize("module", sorted(PINNED))
def test_all_is_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert len(set(mod.__all__)) == len(mod.__all__), f"{module}.__all__ has duplicates"
    assert sorted(mod.__all__) == PINNED[module]


@pytest.mark.parametrize("module", sorted(PINNED))
def test_every_exported_name_exists_and_has_a_docstring(module: str) -> None:
    mod = importlib.import_module(module)
    assert inspect.getdoc(mod), f"{module} has no module docstring"
    undocumented = []
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.{name} is in __all__ but does not exist"
        if not inspect.getdoc(getattr(mod, name)):
            undocumented.append(name)
    assert not undocumented, f"{module}: no docstring on {undocumented}"


def test_public_classes_document_their_public_methods() -> None:
    missing = []
    for name in reactive.__all__:
        obj = getattr(reactive, name)
        if not inspect.isclass(obj) or issubclass(obj, BaseException):
            continue
        for attr, value in vars(obj).items():
            if attr.startswith("_"):
                continue
            fn = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
            if not (inspect.isfunction(fn) or isinstance(fn, property)):
                continue
            # An override inherits the documented contract of the method it overrides.
            if not inspect.getdoc(getattr(obj, attr)) and not fn.__doc__:
                missing.append(f"{name}.{attr}")
    assert not missing, f"public methods without a docstring: {missing}"


def test_package_ships_py_typed() -> None:
    root = Path(reactive.__file__).parent
    assert (root / "py.typed").is_file()
    assert (root / "_dsl" / "blueprints.pyi").is_file()
    with open(root.parent / "pyproject.toml", "rb") as f:
        data = tomllib.load(f)["tool"]["setuptools"]["package-data"]["reactive"]
    # package-data: the marker and the generated stubs go into the wheel
    assert "py.typed" in data
    assert "*/*.pyi" in data

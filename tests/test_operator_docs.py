"""Every public operator documents its semantics; every port action what it raises.

Akka gives every operator a semantics block; so do we, in the docstring, one sentence
each (see ``Source.map``)::

    Emits when f returns. Backpressures when downstream does. Completes when upstream
    does. Fails when f raises. Cancels when downstream cancels.

Which sentences an operator needs follows Akka's per-kind format:

- flow operators (``FlowOps``, the ``Flow`` factories, ``SubFlow``, the with-context
  classes, the junctions): Emits, Backpressures, Completes and Cancels;
- source factories (``Source.tick``, ``MergeHub.source``, ...): Emits and Completes;
- sink factories (``Sink.fold``, ``BroadcastHub.sink``, ...): Backpressures and Cancels.

Each sentence is the keyword followed by ``when`` or ``never`` ("Backpressures never",
"Completes never"), anywhere in the docstring (``reactive.io`` writes them as
``*Emits when*``). The with-context classes follow one rule: every operator carries its
own full block, written for the context variant (no "see Source.map"), because a
wrapper's semantics can differ (``aggregate_by_key`` waits for durable writes).

The stage API (``GraphStageLogic``): every action on a port, and every timer schedule,
has a ``Raises:`` section saying what misuse raises (or ``Nothing``).
"""

from __future__ import annotations

import inspect
import re
from typing import TYPE_CHECKING, Any

import pytest

import reactive
import reactive.io
from reactive import (
    Flow,
    FlowWithContext,
    Sink,
    Source,
    SourceWithContext,
)
from reactive._dsl.subflow import SubFlow
from reactive._stage.logic import (
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    TimerGraphStageLogic,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

KEYWORDS: dict[str, tuple[str, ...]] = {
    "flow": ("Emits", "Backpressures", "Completes", "Cancels"),
    "source": ("Emits", "Completes"),
    "sink": ("Backpressures", "Cancels"),
}

#: Public callables of the blueprint classes that are no operators, with the reason.
NOT_OPERATORS: dict[str, str] = {
    "via": "plumbing: appends a flow (Akka's operator index leaves it out, catalog 2.14)",
    "via_mat": "plumbing: via combining materialized values",
    "to": "plumbing: closes a blueprint with a sink (SubFlow.to is checked, as a sink)",
    "to_mat": "plumbing: to combining materialized values",
    "join": "plumbing: Flow.join closes a cycle into a RunnableGraph",
    "join_mat": "plumbing: join combining materialized values",
    "run_with": "running shortcut: materializes, no new stage",
    "run_foreach": "running shortcut (Sink.foreach is checked)",
    "run_fold": "running shortcut (Sink.fold is checked)",
    "run_reduce": "running shortcut (Sink.reduce is checked)",
    "named": "attribute: names the blueprint",
    "with_attributes": "attribute: replaces the attributes",
    "add_attributes": "attribute: adds attributes",
    "async_boundary": "attribute: Akka's .async marks an island boundary, no stage",
    "map_materialized_value": "materialized value only, no stage",
    "to_mermaid": "rendering helper",
    "from_graph": "wraps a graph whose own stages document themselves",
    "as_source_with_context": "view change: a Source as a SourceWithContext",
    "as_flow_with_context": "view change: a Flow as a FlowWithContext",
    "as_source": "view change: a SourceWithContext as its Source of pairs",
    "as_flow": "view change: a FlowWithContext as its Flow of pairs",
    "from_tuples": "view change: a blueprint of pairs as a with-context one",
    "identity": "FlowWithContext.identity: the empty flow (no stage)",
}

#: Factories typed ``Any`` (their kind cannot be read from the annotation).
FACTORY_KINDS: dict[str, str] = {
    "RestartSource.with_backoff": "source",
    "RestartSource.on_failures_with_backoff": "source",
    "RestartFlow.with_backoff": "flow",
    "RestartFlow.on_failures_with_backoff": "flow",
    "RestartSink.with_backoff": "sink",
    "RetryFlow.with_backoff": "flow",
    "KillSwitches.single": "flow",
    "SharedKillSwitch.flow": "flow",
}

#: The port actions and timer schedules of the stage API.
PORT_ACTIONS: tuple[str, ...] = (
    "set_handler",
    "set_handlers",
    "get_handler",
    "pull",
    "try_pull",
    "grab",
    "is_available",
    "has_been_pulled",
    "is_closed",
    "cancel",
    "push",
    "complete",
    "fail",
    "emit",
    "emit_multiple",
    "abort_emitting",
    "is_emitting",
    "read",
    "read_n",
    "abort_reading",
    "pass_along",
    "complete_stage",
    "fail_stage",
    "cancel_stage",
    "schedule_once",
    "schedule_with_fixed_delay",
    "schedule_at_fixed_rate",
    "cancel_timer",
)


def missing(doc: str | None, kind: str) -> list[str]:
    """The sentences of ``kind``'s block that ``doc`` lacks."""
    text = " ".join((doc or "").split())
    return [k for k in KEYWORDS[kind] if not re.search(rf"\b{k} (when|never)\b", text)]


def _public_callables(cls: type) -> Iterator[tuple[str, Any]]:
    for name in sorted(dir(cls)):
        if name.startswith("_"):
            continue
        raw = inspect.getattr_static(cls, name)
        if isinstance(raw, property):
            continue
        attr = getattr(cls, name)
        if callable(attr):
            yield name, raw


def _blueprint_operators() -> Iterator[tuple[str, Callable[..., Any], str]]:
    """``(qualified name, callable, kind)`` of every operator on the blueprint classes."""
    for cls in (Source, Flow, Sink, SubFlow, SourceWithContext, FlowWithContext):
        for name, raw in _public_callables(cls):
            if cls is SubFlow and name == "to":
                yield "SubFlow.to", getattr(cls, name), "sink"
                continue
            if name in NOT_OPERATORS:
                continue
            static = isinstance(raw, staticmethod)
            if cls is Source and static:
                kind = "source"
            elif cls is Sink:
                kind = "sink"
            else:
                kind = "flow"
            yield f"{cls.__name__}.{name}", getattr(cls, name), kind


_BLUEPRINT_CLASSES = {"Source", "Flow", "Sink", "SourceWithContext", "FlowWithContext"}


def _factory_kind(qualname: str, f: Callable[..., Any]) -> str | None:
    if qualname in FACTORY_KINDS:
        return FACTORY_KINDS[qualname]
    ret = str(inspect.signature(f).return_annotation)
    for prefix, kind in (("Source[", "source"), ("Flow[", "flow"), ("Sink[", "sink")):
        if ret.startswith(prefix):
            return kind
    return None


def _other_operators() -> Iterator[tuple[str, Any, str]]:
    """Junction classes and blueprint factories of the other public classes."""
    for mod in (reactive, reactive.io):
        for export in mod.__all__:
            obj = getattr(mod, export)
            if not inspect.isclass(obj) or export in _BLUEPRINT_CLASSES:
                continue
            if issubclass(obj, GraphStageWithMaterializedValue):
                yield export, obj, "flow"  # a junction: documented on the class
                continue
            if issubclass(obj, BaseException):
                continue
            for name, raw in _public_callables(obj):
                if not isinstance(raw, staticmethod | classmethod) and not inspect.isfunction(raw):
                    continue  # inherited from a builtin: no operator
                qualname = f"{export}.{name}"
                f = getattr(obj, name)
                if name in NOT_OPERATORS and qualname not in FACTORY_KINDS:
                    continue
                kind = _factory_kind(qualname, f)
                if kind is not None:
                    yield qualname, f, kind


OPERATORS = [*_blueprint_operators(), *_other_operators()]


def test_the_walk_finds_the_operators() -> None:
    """A walk that found nothing would pass every check: pin a sample of each kind."""
    found = {name: kind for name, _, kind in OPERATORS}
    expected = {
        "Source.map": "flow",
        "Flow.throttle": "flow",
        "SubFlow.merge_substreams": "flow",
        "SubFlow.to": "sink",
        "SourceWithContext.map": "flow",
        "FlowWithContext.aggregate_by_key": "flow",
        "Source.tick": "source",
        "Source.queue": "source",
        "Flow.from_sink_and_source": "flow",
        "Sink.fold": "sink",
        "Sink.head": "sink",
        "Broadcast": "flow",
        "Merge": "flow",
        "ZipLatestWith": "flow",
        "MergeHub.source": "source",
        "BroadcastHub.sink": "sink",
        "RestartSource.with_backoff": "source",
        "RetryFlow.with_backoff": "flow",
        "KillSwitches.single": "flow",
        "FileIO.from_path": "source",
        "Framing.delimiter": "flow",
    }
    assert {k: found.get(k) for k in expected} == expected
    assert len(found) > 300
    assert not {"Source.via", "Flow.to", "Source.run_with"} & found.keys()


@pytest.mark.parametrize(("name", "obj", "kind"), OPERATORS, ids=[name for name, _, _ in OPERATORS])
def test_operator_documents_its_semantics(name: str, obj: Any, kind: str) -> None:
    assert missing(inspect.getdoc(obj), kind) == [], f"{name}: add the semantics block"


def test_the_check_catches_a_missing_sentence() -> None:
    full = "Map.\n\nEmits when f returns. Backpressures when downstream does.\n"
    full += "Completes when upstream\ncompletes. Cancels when downstream cancels."
    assert missing(full, "flow") == []
    assert missing(full.replace("Cancels when", "Stops when"), "flow") == ["Cancels"]
    assert missing("Backpressures never. *Cancels when* it fails.", "sink") == []
    assert missing("Emits when pulled.", "source") == ["Completes"]
    assert missing(None, "sink") == ["Backpressures", "Cancels"]


def test_every_port_action_is_listed() -> None:
    """A new public method taking a port must be added to ``PORT_ACTIONS`` (and say
    what it raises)."""
    port_params = {"port", "inlet", "outlet", "from_", "to"}
    takes_port = set()
    for cls in (GraphStageLogic, TimerGraphStageLogic):
        for name, _raw in _public_callables(cls):
            params = set(inspect.signature(getattr(cls, name)).parameters)
            if params & port_params or name.startswith("schedule_"):
                takes_port.add(name)
    assert takes_port <= set(PORT_ACTIONS), sorted(takes_port - set(PORT_ACTIONS))
    assert {"pull", "push", "grab", "emit", "read", "schedule_once"} <= takes_port


@pytest.mark.parametrize("name", PORT_ACTIONS)
def test_port_action_says_what_it_raises(name: str) -> None:
    doc = inspect.getdoc(getattr(TimerGraphStageLogic, name)) or ""
    assert re.search(r"^Raises:\n    \S", doc, re.MULTILINE), f"{name}: add a Raises: section"

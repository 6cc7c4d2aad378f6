"""Generate ``reactive/_dsl/blueprints.pyi`` and ``reactive/_dsl/subflow.pyi``.

Python cannot say "``map`` returns the same kind of blueprint", so ``Source``, ``Flow`` and
``SubFlow`` each get their own typed copy of every ``FlowOps`` operator. The single source
of an operator's types is its annotations on the family mixin (``reactive/_dsl/flow_ops/``):
parameter types as written, and a return type ``Repr[out, mat]`` (Pekko's ``Repr``: "this
kind of blueprint") or ``SubRepr[Out, Mat]`` (a ``SubFlow`` over it), which this script
replaces with ``Source[out, mat]``, ``Flow[In, out, mat]``, ``SubFlow[out, Mat, Ctx]``
(``typing.get_overloads`` gives operators with several signatures); an operator without a
``Repr`` return annotation gets a generic typing (``tests/test_typing.py`` fails on one).
The methods of ``Source``, ``Flow``, ``Sink`` and ``RunnableGraph`` that are not operators
(factories, ``to``, ``to_mat``, ``run_with``, ...) are typed at their source too: their
annotations go into the stubs as written (``_render_typed``; Flow's ``In``/``Out``/``Mat``
renamed). What stays written here: the stub headers (imports, type variables) and
``HAND``, the signatures one runtime definition cannot give (``map_materialized_value``
and ``__init__``, defined once in ``Graph`` and typed per class, and ``SubFlow``'s exits,
whose return type depends on the parent kind); ``tests/test_typing.py`` fails when the
committed stubs differ from what this script generates.

Usage::

    python tools/gen_stubs.py          # rewrite the stubs
    python tools/gen_stubs.py --check  # exit 1 if they are out of date
"""

from __future__ import annotations

import ast
import builtins
import inspect
import re
import subprocess
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if typing.TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BLUEPRINTS_PYI = ROOT / "reactive" / "_dsl" / "blueprints.pyi"
SUBFLOW_PYI = ROOT / "reactive" / "_dsl" / "subflow.pyi"
WITH_CONTEXT_PYI = ROOT / "reactive" / "_dsl" / "with_context.pyi"


@dataclass(frozen=True)
class Variant:
    """One signature of an operator, read from its annotations: parameter types, element
    type and materialized value out.

    ``params`` maps parameter names to their annotations; ``out`` is the new element type,
    or ``"<sub>"`` for a ``SubFlow`` of the current elements; ``mat`` is the new
    materialized value type (``SubFlow`` always keeps its parent's); ``fn`` the
    ``@overload`` (or the method) whose parameter list (names, order, defaults) it has.
    """

    params: dict[str, str] = field(default_factory=dict)
    out: str = "Out"
    mat: str = "Mat"
    fn: Any = None


# Methods that are not FlowOps operators and cannot be typed at their source: hand-typed
# signatures per class (tests/test_typing.py checks their parameter names against the
# runtime). Everything else is read from the runtime annotations.
GRAPH_METHODS = """\
    @property
    def shape(self) -> Shape: ...
    def with_attributes(self, attributes: Attributes) -> Self: ...
    def add_attributes(self, attributes: Attributes) -> Self: ...
    def named(self, name: str) -> Self: ...
    def async_boundary(self) -> Self: ...
    def to_mermaid(self) -> str: ...
    def __rshift__(self, other: Any) -> Any: ...
"""

HAND: dict[str, dict[str, str]] = {
    "Graph": {
        "__init__": "def __init__(self, module: Module) -> None: ...",
        "map_materialized_value": (
            "def map_materialized_value(self, f: Callable[[Any], Any]) -> Any: ..."
        ),
    },
    "FlowOps": {
        "map_materialized_value": (
            "def map_materialized_value(self, f: Callable[[Mat], Any]) -> FlowOps[Out, Any]: ..."
        ),
    },
    "Source": {
        "map_materialized_value": (
            "def map_materialized_value(self, f: Callable[[Mat], M2]) -> Source[Out, M2]: ..."
        ),
    },
    "Flow": {
        "map_materialized_value": (
            "def map_materialized_value(self, f: Callable[[Mat], M2]) -> Flow[In, Out, M2]: ..."
        ),
    },
    "Sink": {
        "__init__": "def __init__(self, module: Module) -> None: ...",
        "map_materialized_value": (
            "def map_materialized_value(self, f: Callable[[Mat], M2]) -> Sink[In, M2]: ..."
        ),
    },
    "RunnableGraph": {
        "__init__": "def __init__(self, module: Module) -> None: ...",
        "map_materialized_value": (
            "def map_materialized_value(self, f: Callable[[Mat], M2]) -> RunnableGraph[M2]: ..."
        ),
    },
    "SubFlow": {
        "__init__": (
            "def __init__(self, parent: Any, flow: Flow[Any, Any, Any] | None = ...) -> None: ..."
        ),
        "map_materialized_value": (
            "def map_materialized_value(self, f: Callable[[Any], Any])"
            " -> SubFlow[Out, Mat, Ctx]: ..."
        ),
        "substream_flow": "@property\ndef substream_flow(self) -> Flow[Any, Out, Any]: ...",
        "merge_substreams": "<exit>",
        "concat_substreams": "<exit>",
        "merge_substreams_with_parallelism": "<exit>",
        "to": (
            "@overload\n"
            "def to(\n    self: SubFlow[Out, Mat, Source[Any, Any]], sink: Sink[Out, Any]\n"
            ") -> RunnableGraph[Mat]: ...\n"
            "@overload\n"
            "def to(\n    self: SubFlow[Out, Mat, Flow[T, Any, Any]], sink: Sink[Out, Any]\n"
            ") -> Sink[T, Mat]: ...\n"
            "@overload\n"
            "def to(self, sink: Sink[Out, Any]) -> Any: ..."
        ),
    },
}

# Names the stubs may take from runtime annotations as they are.
_KNOWN_NAMES = {
    "Any", "Callable", "Awaitable", "Iterable", "Iterator", "AsyncIterable", "Hashable",
    "BaseException", "Exception", "int", "float", "bool", "str", "bytes", "None", "tuple",
    "list", "dict", "object", "Materializer", "Attributes", "Module", "Shape",
    "OverflowStrategy", "ThrottleMode", "Source", "Flow", "Sink", "RunnableGraph", "Graph",
}  # fmt: skip
_CLASS_TVARS = {"Out", "Mat", "In", "U", "Mat2"}

BLUEPRINTS_HEADER = '''\
# Generated by tools/gen_stubs.py from the runtime classes' annotations: do not edit.
# Regenerate with `python tools/gen_stubs.py`; tests/test_typing.py fails on drift.
"""Typed view of the blueprints: ``Source[Out, Mat]``, ``Flow[In, Out, Mat]``,
``Sink[In, Mat]``, ``RunnableGraph[Mat]``."""

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Hashable, Iterable
from typing import Any, Generic, Never, Self, overload

from typing_extensions import TypeVar

from .._attributes import Attributes
from .._impl.materializer import Materializer
from .._impl.modules import Module
from .._keep import DoneType, NotUsedType
from .._ops.buffers import OverflowStrategy
from .._ops.delays import DelayOverflowStrategy, DelayStrategy
from .._ops.queues import SinkQueue, SourceQueue
from .._ops.sources import Cancellable
from .._ops.substreams import SubstreamCancelStrategy
from .._ops.timer import ThrottleMode
from .._ops.watch import FlowMonitor
from .._ops.window_specs import EmitStrategy, Windowed, WindowSpec
from .._stage.logic import GraphStageWithMaterializedValue
from .._stage.shapes import Shape
from ..rs import Publisher, Subscriber
from ..state._spec import StoreSpec
from ..state._view import StoreView
from .bidi import BidiFlow
from .subflow import SubFlow
from .with_context import FlowWithContext, SourceWithContext

__all__ = ["Source", "Flow", "Sink", "RunnableGraph", "FlowOps", "Graph"]

In = TypeVar("In", contravariant=True)
Out = TypeVar("Out", covariant=True, default=Any)
Mat = TypeVar("Mat", covariant=True, default=NotUsedType)
# Flow's own parameters: ``Flow[int]`` is ``Flow[int, int, NotUsedType]``.
FIn = TypeVar("FIn", contravariant=True, default=Any)
FOut = TypeVar("FOut", covariant=True, default=FIn)
FMat = TypeVar("FMat", covariant=True, default=NotUsedType)
T = TypeVar("T")
U = TypeVar("U")
V = TypeVar("V")
S = TypeVar("S")
M2 = TypeVar("M2")
M3 = TypeVar("M3")
M4 = TypeVar("M4")

def _module_of(g: Any) -> Module: ...
def bidi_join_module(
    bidi: Module, flow: Module, combine: Callable[[Any, Any], Any], reverse: bool = ...
) -> Module: ...
'''

SUBFLOW_HEADER = '''\
# Generated by tools/gen_stubs.py from the runtime classes' annotations: do not edit.
# Regenerate with `python tools/gen_stubs.py`; tests/test_typing.py fails on drift.
"""Typed view of ``SubFlow[Out, Mat, Ctx]``: ``Ctx`` is the kind of blueprint the
substreams came from (``Source[Any, Any]``, ``Flow[In, Any, Any]`` or a ``SubFlow``); the
exits give back that kind, with the parent's materialized value ``Mat``."""

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, Generic, overload

from typing_extensions import TypeVar

from .._impl.modules import Module
from .._keep import DoneType, NotUsedType
from .._ops.buffers import OverflowStrategy
from .._ops.delays import DelayOverflowStrategy, DelayStrategy
from .._ops.substreams import SubstreamCancelStrategy
from .._ops.timer import ThrottleMode
from .._ops.watch import FlowMonitor
from .._ops.window_specs import EmitStrategy, Windowed, WindowSpec
from .._stage.logic import GraphStageWithMaterializedValue
from ..state._spec import StoreSpec
from ..state._view import StoreView
from .blueprints import Flow, FlowOps, RunnableGraph, Sink, Source

__all__ = ["SubFlow"]

Out = TypeVar("Out", covariant=True)
Mat = TypeVar("Mat", covariant=True)
Ctx = TypeVar("Ctx", covariant=True)
C2 = TypeVar("C2")
T = TypeVar("T")
U = TypeVar("U")
V = TypeVar("V")
S = TypeVar("S")
M2 = TypeVar("M2")
M3 = TypeVar("M3")
'''

_SUBFLOW_EXITS = [
    ("SubFlow[Out, Mat, Source[Any, Any]]", "Source[Out, Mat]"),
    ("SubFlow[Out, Mat, Flow[T, Any, Any]]", "Flow[T, Out, Mat]"),
    ("SubFlow[Out, Mat, SubFlow[Any, Any, C2]]", "SubFlow[Out, Mat, C2]"),
    ("", "Any"),
]
"""The overloads of a SubFlow exit (``merge_substreams`` ...): the parent kind comes back."""


@dataclass(frozen=True)
class Kind:
    """How one class spells its blueprint type (``ret(out, mat)``) and its SubFlow."""

    name: str
    ret: Callable[[str, str], str]
    sub: str
    keeps_mat: bool = False


KINDS = {
    "FlowOps": Kind("FlowOps", lambda o, m: f"FlowOps[{o}, {m}]", "SubFlow[Out, Any, Any]"),
    "Source": Kind(
        "Source", lambda o, m: f"Source[{o}, {m}]", "SubFlow[Out, Mat, Source[Any, Any]]"
    ),
    "Flow": Kind(
        "Flow", lambda o, m: f"Flow[In, {o}, {m}]", "SubFlow[Out, Mat, Flow[In, Any, Any]]"
    ),
    "SubFlow": Kind(
        "SubFlow",
        lambda o, m: f"SubFlow[{o}, Mat, Ctx]",
        "SubFlow[Out, Mat, SubFlow[Any, Any, Ctx]]",
        keeps_mat=True,
    ),
}


def _safe_annotation(ann: Any, allowed_tvars: set[str]) -> str:
    """The runtime annotation if every name in it exists in the stubs, else ``Any``."""
    if ann is inspect.Parameter.empty or not isinstance(ann, str):
        return "Any"
    try:
        tree = ast.parse(ann, mode="eval")
    except SyntaxError:
        return "Any"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            return "Any"
        if isinstance(node, ast.Name) and node.id not in _KNOWN_NAMES | allowed_tvars:
            return "Any"
    return ann


def _params(
    fn: Any, types: dict[str, str], allowed_tvars: set[str], *, static: bool
) -> tuple[list[str], list[str]]:
    """The parameter list of ``fn`` typed from ``types`` (else from the runtime)."""
    sig = inspect.signature(fn)
    parts: list[str] = [] if static else ["self"]
    names: list[str] = []
    star_done = False
    for i, p in enumerate(sig.parameters.values()):
        if i == 0 and not static:
            continue
        t = types.get(p.name)
        if t is None:
            t = _safe_annotation(p.annotation, allowed_tvars)
        names.append(p.name)
        if p.kind is p.VAR_POSITIONAL:
            parts.append(f"*{p.name}: {t}")
            star_done = True
        elif p.kind is p.VAR_KEYWORD:
            parts.append(f"**{p.name}: {t}")
        else:
            if p.kind is p.KEYWORD_ONLY and not star_done:
                parts.append("*")
                star_done = True
            default = "" if p.default is p.empty else " = ..."
            parts.append(f"{p.name}: {t}{default}")
    return parts, names


def _def(name: str, params: list[str], ret: str, indent: str = "    ") -> str:
    params = [_RENAME(p) for p in params]
    ret = _RENAME(ret)
    line = f"{indent}def {name}({', '.join(params)}) -> {ret}: ..."
    if len(line) <= 100:
        return line
    body = "".join(f"{indent}    {p},\n" for p in params)
    return f"{indent}def {name}(\n{body}{indent}) -> {ret}: ..."


def _same(text: str) -> str:
    return text


_RENAME: Callable[[str], str] = _same
"""Applied to every generated signature (Flow renames its type variables)."""


def _indent(text: str, indent: str = "    ") -> str:
    return "\n".join(indent + line if line else line for line in text.splitlines())


def _own_public_and_private(cls: type, stop: tuple[type, ...]) -> list[str]:
    """Method and property names defined in ``cls`` up to (excluding) ``stop`` classes."""
    names: list[str] = []
    for klass in cls.__mro__:
        if klass in stop or klass is object:
            break
        for name in klass.__dict__:
            if name in names:
                continue
            v = klass.__dict__[name]
            if isinstance(v, (staticmethod, property)) or inspect.isfunction(v):
                if name.startswith("__") and name != "__init__":
                    continue
                names.append(name)
    return names


def _repr_of(ann: Any) -> tuple[str, str] | None:
    """``(out, mat)`` of a ``Repr[out, mat]`` return annotation, ``("<sub>", "Mat")`` of a
    ``SubRepr[...]`` one, None for anything else (a method not typed at its source yet)."""
    if not isinstance(ann, str):
        return None
    node = ast.parse(ann, mode="eval").body
    if not (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)):
        return None
    if node.value.id == "SubRepr":
        return "<sub>", "Mat"
    if node.value.id != "Repr" or not isinstance(node.slice, ast.Tuple):
        return None
    out, mat = node.slice.elts
    return ast.unparse(out), ast.unparse(mat)


_STUB_CLASSES = {"Graph", "FlowOps", "Source", "Flow", "Sink", "RunnableGraph", "SubFlow", "In"}
"""The names the stubs define below their header (and Flow's ``In``)."""


def _stub_names(header: str) -> set[str]:
    """The names a stub header imports or defines (what an annotation may use)."""
    names: set[str] = set()
    for node in ast.parse(header).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names | {n for n in dir(builtins) if not n.startswith("_")}


def _annotated(kind: Kind, fn: Any, name: str) -> list[Variant] | None:
    """The variants of an operator typed at its source: its ``@overload`` signatures (else
    its own), each returning ``Repr[out, mat]`` (``SubRepr[...]``); None when untyped there.

    Every name an annotation uses must exist in the stub (``BLUEPRINTS_HEADER``,
    ``SUBFLOW_HEADER``): a ``ValueError`` says which one is missing instead of a stub that
    silently falls back to ``Any``.
    """
    sigs = list(typing.get_overloads(fn)) or [fn]
    variants: list[Variant] = []
    header = SUBFLOW_HEADER if kind.name == "SubFlow" else BLUEPRINTS_HEADER
    known = _stub_names(header) | _STUB_CLASSES | {"Repr", "SubRepr"}
    for f in sigs:
        sig = inspect.signature(f)
        rm = _repr_of(sig.return_annotation)
        if rm is None:
            if len(sigs) > 1:
                raise ValueError(f"{name}: an overload that does not return Repr[...]")
            return None
        params: dict[str, str] = {}
        for i, p in enumerate(sig.parameters.values()):
            if i == 0:
                continue
            if p.annotation is p.empty:
                raise ValueError(f"{name}({p.name}): no annotation")
            ann = str(p.annotation)
            unknown = {
                n.id
                for n in ast.walk(ast.parse(ann, mode="eval"))
                if isinstance(n, ast.Name) and n.id not in known
            }
            if unknown:
                raise ValueError(f"{name}({p.name}): {sorted(unknown)} not in the stub header")
            params[p.name] = ann
        variants.append(Variant(params, *rm, fn=f))
    return variants


def _render_op(kind: Kind, cls: type, name: str) -> str:
    fn = getattr(cls, name)
    variants = _annotated(kind, fn, name)
    tvars = {"Out", "Mat", "U"} | ({"In"} if kind.name == "Flow" else set())
    if variants is None:
        params, _ = _params(fn, {}, tvars, static=False)
        return _def(name, params, "Any" if name.startswith("_") else kind.ret("Any", "Mat"))
    out_lines: list[str] = []
    for v in variants:
        params, _ = _params(v.fn or fn, v.params, tvars, static=False)
        mat = "Mat" if kind.keeps_mat else v.mat
        if kind.name == "FlowOps" and mat != "Mat":
            mat = "Any"
        ret = kind.sub if v.out == "<sub>" else kind.ret(v.out, mat)
        if len(variants) > 1:
            out_lines.append("    @overload")
        out_lines.append(_def(name, params, ret))
    return "\n".join(out_lines)


def _render_fallback(kind_name: str, cls: type, name: str) -> str:
    raw = inspect.getattr_static(cls, name)
    if isinstance(raw, property):
        return f"    @property\n    def {name}(self) -> Any: ..."
    static = isinstance(raw, staticmethod)
    fn = getattr(cls, name)
    params, _ = _params(fn, {}, set() if static else {"Out", "Mat", "In"}, static=static)
    if static and not name.startswith("_") and kind_name in ("Source", "Sink"):
        ret = f"{kind_name}[Any, Any]"
    else:
        ret = "Any"
    text = _def(name, params, ret)
    return f"    @staticmethod\n{text}" if static else text


_TYPED_AT_SOURCE = ("Source", "Flow", "Sink", "RunnableGraph")
"""The classes whose methods that are not operators (factories, ``to``, ``run_with``, ...)
are rendered from their annotations when they have them all (``HAND`` aside)."""


def _render_typed(kind_name: str, cls: type, name: str) -> str | None:
    """A method that is not an operator, typed at its source: its parameters and return
    annotated, written into the stub as they are (Flow's type variables renamed); None when
    an annotation is missing (``_render_fallback`` types it generically). A name the stub
    header does not import raises ``ValueError`` (add it to the header)."""
    raw = inspect.getattr_static(cls, name)
    if isinstance(raw, property) or kind_name not in _TYPED_AT_SOURCE:
        return None
    static = isinstance(raw, staticmethod)
    fn = getattr(cls, name)
    # A method with several signatures (``Flow.join``: a Flow or a BidiFlow) is written
    # once per ``@overload``, each typed from its own annotations.
    sigs = list(typing.get_overloads(fn)) or [fn]
    known = _stub_names(BLUEPRINTS_HEADER) | _STUB_CLASSES
    texts: list[str] = []
    for f in sigs:
        sig = inspect.signature(f)
        params = list(sig.parameters.values())[0 if static else 1 :]
        anns = [p.annotation for p in params] + [sig.return_annotation]
        if any(a is inspect.Parameter.empty or not isinstance(a, str) for a in anns):
            if len(sigs) > 1:
                raise ValueError(f"{kind_name}.{name}: an overload without annotations")
            return None
        for ann in anns:
            unknown = {
                n.id
                for n in ast.walk(ast.parse(ann, mode="eval"))
                if isinstance(n, ast.Name) and n.id not in known
            }
            if unknown:
                raise ValueError(f"{kind_name}.{name}: {sorted(unknown)} not in the stub header")
        parts, _ = _params(f, {p.name: p.annotation for p in params}, set(), static=static)
        text = _def(name, parts, sig.return_annotation)
        if static:
            text = f"    @staticmethod\n{text}"
        if len(sigs) > 1:
            text = f"    @overload\n{text}"
        texts.append(text)
    return "\n".join(texts)


def _render_class(kind_name: str, cls: type, header: str, names: list[str]) -> str:
    kind = KINDS.get(kind_name)
    hand = HAND.get(kind_name, {})
    lines = [header]
    for name in names:
        if name in hand:
            text = hand[name]
            if text == "<exit>":
                _, pnames = _params(getattr(cls, name), {}, set(), static=False)
                extra = [f"{p}: int" for p in pnames]
                for self_t, ret in _SUBFLOW_EXITS:
                    me = f"self: {self_t}" if self_t else "self"
                    lines.append("    @overload")
                    lines.append(_def(name, [me, *extra], ret))
                continue
            lines.append(_indent(_RENAME(text)))
        elif kind is not None and name in OPS_NAMES:
            lines.append(_render_op(kind, cls, name))
        else:
            typed = _render_typed(kind_name, cls, name)
            lines.append(typed if typed is not None else _render_fallback(kind_name, cls, name))
    return "\n".join(lines) + "\n"


OPS_NAMES: set[str] = set()


def _flowops_names() -> list[str]:
    """FlowOps' operators: the appending primitives first (``flow_ops/_base.py``), then each
    family's mixin in ``FlowOps``' base order (``reactive/_dsl/flow_ops/``)."""
    from reactive._dsl.blueprints import FlowOps, Graph
    from reactive._dsl.flow_ops._base import OpsBase

    names = [n for n in _own_public_and_private(FlowOps, (Graph,)) if n not in ("__init__",)]
    first = [n for n in names if n in OpsBase.__dict__]
    return first + [n for n in names if n not in first]


def generate() -> dict[Path, str]:
    """Render both stubs from the runtime classes; returns ``{path: text}``."""
    from reactive._dsl.blueprints import Flow, FlowOps, Graph, RunnableGraph, Sink, Source
    from reactive._dsl.subflow import SubFlow

    ops = _flowops_names()
    OPS_NAMES.clear()
    OPS_NAMES.update(ops)
    graph_names = ["__init__", "map_materialized_value", *_private(Graph)]
    out = [BLUEPRINTS_HEADER]
    out.append(
        _render_class(
            "Graph",
            Graph,
            "class Graph:\n    module: Module\n" + GRAPH_METHODS,
            graph_names,
        )
    )
    flowops_names = ["map_materialized_value", *ops]
    out.append(
        _render_class("FlowOps", FlowOps, "class FlowOps(Graph, Generic[Out, Mat]):", flowops_names)
    )
    src_names = ["map_materialized_value", *ops, *_own_extra(Source, FlowOps)]
    out.append(_render_class("Source", Source, "class Source(FlowOps[Out, Mat]):", src_names))
    flow_names = ["__init__", "map_materialized_value", *ops, *_own_extra(Flow, FlowOps)]
    global _RENAME
    _RENAME = _flow_rename
    try:
        flow = _render_class(
            "Flow", Flow, "class Flow(FlowOps[FOut, FMat], Generic[FIn, FOut, FMat]):", flow_names
        )
    finally:
        _RENAME = _same
    out.append(flow)
    sink_names = ["__init__", "map_materialized_value", *_own_extra(Sink, Graph)]
    out.append(_render_class("Sink", Sink, "class Sink(Graph, Generic[In, Mat]):", sink_names))
    rg_names = ["__init__", "map_materialized_value", *_own_extra(RunnableGraph, Graph)]
    out.append(
        _render_class(
            "RunnableGraph", RunnableGraph, "class RunnableGraph(Graph, Generic[Mat]):", rg_names
        )
    )
    sub_names = ["__init__", "map_materialized_value", *ops, *_own_extra(SubFlow, FlowOps)]
    subflow = [SUBFLOW_HEADER]
    subflow.append(
        _render_class(
            "SubFlow",
            SubFlow,
            "class SubFlow(FlowOps[Out, Mat], Generic[Out, Mat, Ctx]):",
            sub_names,
        )
    )
    return {
        BLUEPRINTS_PYI: _ruff_format(BLUEPRINTS_PYI, "\n\n".join(out)),
        SUBFLOW_PYI: _ruff_format(SUBFLOW_PYI, "\n\n".join(subflow)),
        WITH_CONTEXT_PYI: _ruff_format(WITH_CONTEXT_PYI, generate_with_context()),
    }


def _typevars_of(path: Path) -> str:
    """The module-level ``X = TypeVar(...)`` statements of a runtime module, as written
    there (so that a stub declares its type variables as its runtime module does); private
    ones (``_O``: for the module's own aliases) left out."""
    src = path.read_text()
    lines = src.splitlines()
    out: list[str] = []
    for node in ast.parse(src).body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
            and node.value.func.id == "TypeVar"
            and not any(isinstance(t, ast.Name) and t.id.startswith("_") for t in node.targets)
        ):
            out.extend(lines[node.lineno - 1 : node.end_lineno])
    return "\n".join(out) + "\n"


WITH_CONTEXT_PY = ROOT / "reactive" / "_dsl" / "with_context.py"

WITH_CONTEXT_HEADER = """\
# Generated by tools/gen_stubs.py from the runtime classes' annotations: do not edit.
# Regenerate with `python tools/gen_stubs.py`; tests/test_typing.py fails on drift.
\"\"\"Typed view of ``SourceWithContext[Out, Ctx, Mat]`` and
``FlowWithContext[In, CtxIn, Out, CtxOut, Mat]``: the operators of ``ContextOps`` (written
once in ``with_context.py``, returning ``CtxRepr``) given to each class.\"\"\"

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, overload

from typing_extensions import TypeVar

from .._attributes import Attributes
from .._impl.materializer import Materializer
from .._keep import NotUsedType
from .._ops.timer import ThrottleMode
from .._ops.window_specs import (
    EmitStrategy,
    SessionWindows,
    SlidingWindows,
    TimeWindows,
    Windowed,
)
from ..state._spec import StoreSpec
from .blueprints import Flow, RunnableGraph, Sink, Source

__all__ = ["FlowWithContext", "SourceWithContext"]

""" + _typevars_of(WITH_CONTEXT_PY)

#: How each with-context class spells ``CtxRepr[out, ctx, mat]``, and the renaming of the
#: mixin's type variables in its copy of the operators (``FlowWithContext`` calls the
#: context ``CtxOut``).
_CTX_KINDS: dict[str, tuple[Callable[[str, str, str], str], Callable[[str], str]]] = {
    "SourceWithContext": (lambda o, c, m: f"SourceWithContext[{o}, {c}, {m}]", _same),
    "FlowWithContext": (
        lambda o, c, m: f"FlowWithContext[In, CtxIn, {o}, {c}, {m}]",
        lambda t: re.sub(r"\bCtx\b", "CtxOut", t),
    ),
}


def _ctx_signature(f: Any, name: str, rename: Callable[[str], str], ret: Any) -> str:
    """One ``def`` of a with-context stub, typed from ``f``'s annotations."""
    sig = inspect.signature(f)
    known = _stub_names(WITH_CONTEXT_HEADER) | {"SourceWithContext", "FlowWithContext"}
    parts: list[str] = []
    star = False
    for p in sig.parameters.values():
        if p.name == "self":
            parts.append("self")
            continue
        ann = str(p.annotation)
        if p.annotation is p.empty:
            raise ValueError(f"{name}({p.name}): no annotation")
        unknown = {
            n.id
            for n in ast.walk(ast.parse(ann, mode="eval"))
            if isinstance(n, ast.Name) and n.id not in known
        }
        if unknown:
            raise ValueError(f"{name}({p.name}): {sorted(unknown)} not in WITH_CONTEXT_HEADER")
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        parts.append(f"{p.name}: {rename(ann)}" + ("" if p.default is p.empty else " = ..."))
    r = sig.return_annotation
    node = ast.parse(str(r), mode="eval").body
    if (
        isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == "CtxRepr"
        and isinstance(node.slice, ast.Tuple)
    ):
        rtext = ret(*(rename(ast.unparse(e)) for e in node.slice.elts))
    else:
        rtext = rename(str(r))
    return _def(name, parts, rtext)


def _render_ctx_class(cls: type, header: str) -> str:
    from reactive._dsl.with_context import ContextOps

    ret, rename = _CTX_KINDS[cls.__name__]
    own = [n for n in cls.__dict__ if not n.startswith("__") or n == "__init__"]
    ops = [n for n in ContextOps.__dict__ if not n.startswith("__")]
    at = own.index("_rewrap") + 1 if "_rewrap" in own else len(own)
    names = [n for n in own[:at]] + [n for n in ops if n not in own] + own[at:]
    lines = [header]
    for name in names:
        if name == "__slots__":
            continue
        raw = inspect.getattr_static(cls, name)
        mine = name in cls.__dict__
        ren = _same if mine else rename
        if isinstance(raw, property):
            assert raw.fget is not None
            lines.append("    @property")
            lines.append(_ctx_signature(raw.fget, name, ren, ret))
            continue
        if isinstance(raw, staticmethod):
            lines.append("    @staticmethod")
            lines.append(_ctx_signature(raw.__func__, name, ren, ret).replace("(self, ", "("))
            continue
        if not inspect.isfunction(raw):
            continue
        overloads = list(typing.get_overloads(raw))
        for f in overloads or [raw]:
            if overloads:
                lines.append("    @overload")
            lines.append(_ctx_signature(f, name, ren, ret))
    return "\n".join(lines) + "\n"


def generate_with_context() -> str:
    """``with_context.pyi``: both classes, each with its own copy of ``ContextOps``."""
    from reactive._dsl import with_context as wc

    out = [WITH_CONTEXT_HEADER]
    out.append(
        _render_ctx_class(wc.SourceWithContext, "class SourceWithContext(Generic[Out, Ctx, Mat]):")
    )
    out.append(
        _render_ctx_class(
            wc.FlowWithContext,
            "class FlowWithContext(Generic[In, CtxIn, Out, CtxOut, Mat]):",
        )
    )
    for name in ("source_with_context", "flow_with_context"):
        out.append(_ctx_signature(getattr(wc, name), name, _same, None).replace("    def", "def"))
    return "\n\n".join(out)


def _ruff_format(path: Path, text: str) -> str:
    """``text`` formatted by ``ruff format`` with the project's settings (a dev dependency)."""
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", str(path), "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    return done.stdout


# Flow uses its own type variables (their defaults differ from Source's and Sink's).
_FLOW_TVARS = re.compile(r"\b(In|Out|Mat)\b")


def _flow_rename(text: str) -> str:
    return _FLOW_TVARS.sub(lambda m: "F" + m.group(0), text)


def _private(cls: type) -> list[str]:
    return [
        n
        for n in cls.__dict__
        if n.startswith("_")
        and not n.startswith("__")
        and (inspect.isfunction(cls.__dict__[n]) or isinstance(cls.__dict__[n], staticmethod))
    ]


def _own_extra(cls: type, base: type) -> list[str]:
    """Names ``cls`` defines beyond ``base`` (and, below FlowOps, not its operators)."""
    skip = {"__init__", "map_materialized_value"}
    if base.__name__ == "FlowOps":
        skip |= OPS_NAMES
    return [n for n in _own_public_and_private(cls, (base,)) if n not in skip]


def main(argv: list[str]) -> int:
    """Write the stubs (or, with ``--check``, report whether they are up to date)."""
    files = generate()
    check = "--check" in argv
    stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
    if check:
        for p in stale:
            print(f"out of date: {p.relative_to(ROOT)} (run python tools/gen_stubs.py)")
        return 1 if stale else 0
    for p in stale:
        p.write_text(files[p])
        print(f"wrote {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

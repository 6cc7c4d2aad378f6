"""Generate ``reactive/_dsl/blueprints.pyi`` and ``reactive/_dsl/subflow.pyi``.

Python cannot say "``map`` returns the same kind of blueprint", so ``Source``, ``Flow`` and
``SubFlow`` each get their own typed copy of every ``FlowOps`` operator. The single source
of an operator's types is its annotations on the family mixin (``reactive/_dsl/flow_ops/``):
parameter types as written, and a return type ``Repr[out, mat]`` (Pekko's ``Repr``: "this
kind of blueprint") or ``SubRepr[Out, Mat]`` (a ``SubFlow`` over it), which this script
replaces with ``Source[out, mat]``, ``Flow[In, out, mat]``, ``SubFlow[out, Mat, Ctx]``
(``typing.get_overloads`` gives operators with several signatures); an operator without a
``Repr`` return annotation gets a generic typing (``tests/test_typing.py`` fails on one).
What stays written here: the stub headers (imports, type variables) and ``HAND``, the
signatures of the methods that are not operators (factories, ``to``, ``run_with``, ...),
whose runtime annotations are ``Any``; ``tests/test_typing.py`` fails when the committed
stubs differ from what this script generates.

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


# Methods that are not FlowOps operators: hand-typed signatures per class. ``{P}`` is the
# parameter list read from the runtime (untyped) and is not used: these are written out,
# and tests/test_typing.py checks their parameter names against the runtime.
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
        "to": "def to(self, sink: Sink[Out, Any]) -> RunnableGraph[Mat]: ...",
        "to_mat": (
            "def to_mat(\n        self, sink: Sink[Out, M2], combine: Callable[[Mat, M2], M3]\n"
            "    ) -> RunnableGraph[M3]: ..."
        ),
        "run_with": (
            "def run_with(\n        self, sink: Sink[Out, M2], materializer: Materializer | None"
            " = ...\n    ) -> M2: ..."
        ),
        "run_foreach": (
            "def run_foreach(\n        self, f: Callable[[Out], object], materializer: "
            "Materializer | None = ...\n    ) -> asyncio.Future[DoneType]: ..."
        ),
        "run_fold": (
            "def run_fold(\n        self, zero: U, f: Callable[[U, Out], U], materializer: "
            "Materializer | None = ...\n    ) -> asyncio.Future[U]: ..."
        ),
        "run_reduce": (
            "def run_reduce(\n        self, f: Callable[[Out, Out], Out], materializer: "
            "Materializer | None = ...\n    ) -> asyncio.Future[Out]: ..."
        ),
        "from_iterable": (
            "@staticmethod\ndef from_iterable(iterable: Iterable[T]) -> Source[T, NotUsedType]: ..."
        ),
        "single": "@staticmethod\ndef single(elem: T) -> Source[T, NotUsedType]: ...",
        "empty": "@staticmethod\ndef empty() -> Source[Never, NotUsedType]: ...",
        "failed": (
            "@staticmethod\ndef failed(exc: BaseException) -> Source[Never, NotUsedType]: ..."
        ),
        "never": "@staticmethod\ndef never() -> Source[Never, NotUsedType]: ...",
        "repeat": "@staticmethod\ndef repeat(elem: T) -> Source[T, NotUsedType]: ...",
        "unfold": (
            "@staticmethod\ndef unfold(\n    state: S, f: Callable[[S], tuple[S, T] | None]\n"
            ") -> Source[T, NotUsedType]: ..."
        ),
        "unfold_async": (
            "@staticmethod\ndef unfold_async(\n"
            "    state: S, f: Callable[[S], Awaitable[tuple[S, T] | None]]\n"
            ") -> Source[T, NotUsedType]: ..."
        ),
        "from_async_iterable": (
            "@staticmethod\ndef from_async_iterable(\n"
            "    ait: AsyncIterable[T] | Callable[[], AsyncIterable[T]]\n"
            ") -> Source[T, NotUsedType]: ..."
        ),
        "from_awaitable": (
            "@staticmethod\ndef from_awaitable(\n"
            "    aw: Awaitable[T] | Callable[[], Awaitable[T]]\n"
            ") -> Source[T, NotUsedType]: ..."
        ),
        "tick": (
            "@staticmethod\ndef tick(initial_delay: float, interval: float, tick: T)"
            " -> Source[T, Cancellable]: ..."
        ),
        "zip_n": (
            "@staticmethod\ndef zip_n(sources: Iterable[Source[T, Any]])"
            " -> Source[list[T], NotUsedType]: ..."
        ),
        "combine": (
            "@staticmethod\ndef combine(\n    a: Source[T, Any],\n    b: Source[T, Any],\n"
            "    *more: Source[T, Any],\n    strategy: Callable[[int], Any] | None = ...,\n"
            ") -> Source[T, NotUsedType]: ..."
        ),
        "queue": (
            "@staticmethod\ndef queue(\n    buffer_size: int,\n    overflow_strategy: "
            "OverflowStrategy | None = ...,\n    max_concurrent_offers: int = ...,\n"
            ") -> Source[Any, SourceQueue]: ..."
        ),
        "from_graph": "@staticmethod\ndef from_graph(g: Any) -> Source[Any, Any]: ...",
        "as_source_with_context": (
            "def as_source_with_context(\n        self, extract_ctx: Callable[[Out], U]\n"
            "    ) -> SourceWithContext[Out, U, Mat]: ..."
        ),
        # lazy and resource sources (issue 12, item 14)
        "maybe": "@staticmethod\ndef maybe() -> Source[Any, asyncio.Future[Any]]: ...",
        "cycle": (
            "@staticmethod\ndef cycle(factory: Callable[[], Iterable[T]])"
            " -> Source[T, NotUsedType]: ..."
        ),
        "unfold_resource": (
            "@staticmethod\ndef unfold_resource(\n    create: Callable[[], S],\n"
            "    read: Callable[[S], T | None],\n    close: Callable[[S], object],\n"
            ") -> Source[T, NotUsedType]: ..."
        ),
        "unfold_resource_async": (
            "@staticmethod\ndef unfold_resource_async(\n    create: Callable[[], Awaitable[S]],\n"
            "    read: Callable[[S], Awaitable[T | None]],\n"
            "    close: Callable[[S], Awaitable[object]],\n) -> Source[T, NotUsedType]: ..."
        ),
        "lazy_source": (
            "@staticmethod\ndef lazy_source(\n    factory: Callable[[], Source[T, M2]]\n"
            ") -> Source[T, asyncio.Future[M2]]: ..."
        ),
        "lazy_single": (
            "@staticmethod\ndef lazy_single(f: Callable[[], T]) -> Source[T, NotUsedType]: ..."
        ),
        "lazy_future": (
            "@staticmethod\ndef lazy_future(\n    f: Callable[[], Awaitable[T | None]]\n"
            ") -> Source[T, NotUsedType]: ..."
        ),
    },
    "Flow": {
        "__init__": "def __init__(self, module: Module | None = ...) -> None: ...",
        "map_materialized_value": (
            "def map_materialized_value(self, f: Callable[[Mat], M2]) -> Flow[In, Out, M2]: ..."
        ),
        "to": "def to(self, sink: Sink[Out, Any]) -> Sink[In, Mat]: ...",
        "to_mat": (
            "def to_mat(\n        self, sink: Sink[Out, M2], combine: Callable[[Mat, M2], M3]\n"
            "    ) -> Sink[In, M3]: ..."
        ),
        "run_with": (
            "def run_with(\n        self,\n        source: Source[In, M2],\n"
            "        sink: Sink[Out, M3],\n        materializer: Materializer | None = ...,\n"
            "    ) -> tuple[M2, M3]: ..."
        ),
        "join": "def join(self, flow: Flow[Out, In, Any]) -> RunnableGraph[Mat]: ...",
        "join_mat": (
            "def join_mat(\n        self, flow: Flow[Out, In, M2], combine: "
            "Callable[[Mat, M2], M3]\n    ) -> RunnableGraph[M3]: ..."
        ),
        "from_function": (
            "@staticmethod\ndef from_function(f: Callable[[T], U]) -> Flow[T, U, NotUsedType]: ..."
        ),
        "from_graph": "@staticmethod\ndef from_graph(g: Any) -> Flow[Any, Any, Any]: ...",
        "as_flow_with_context": (
            "def as_flow_with_context(\n        self,\n"
            "        collapse_context: Callable[[U, V], In],\n"
            "        extract_context: Callable[[Out], S],\n"
            "    ) -> FlowWithContext[U, V, Out, S, Mat]: ..."
        ),
        "from_sink_and_source": (
            "@staticmethod\ndef from_sink_and_source(\n"
            "    sink: Sink[T, M2], source: Source[U, Any]\n) -> Flow[T, U, M2]: ..."
        ),
        "from_sink_and_source_mat": (
            "@staticmethod\ndef from_sink_and_source_mat(\n    sink: Sink[T, M2],\n"
            "    source: Source[U, M3],\n    combine: Callable[[M2, M3], M4],\n"
            ") -> Flow[T, U, M4]: ..."
        ),
        "lazy_flow": (
            "@staticmethod\ndef lazy_flow(\n    factory: Callable[[], Flow[T, U, M2]]\n"
            ") -> Flow[T, U, asyncio.Future[M2]]: ..."
        ),
    },
    "Sink": {
        "__init__": "def __init__(self, module: Module) -> None: ...",
        "map_materialized_value": (
            "def map_materialized_value(self, f: Callable[[Mat], M2]) -> Sink[In, M2]: ..."
        ),
        "run_with": (
            "def run_with(\n        self, source: Source[In, M2], materializer: "
            "Materializer | None = ...\n    ) -> M2: ..."
        ),
        "contramap": "def contramap(self, f: Callable[[T], In]) -> Sink[T, Mat]: ...",
        "from_graph": "@staticmethod\ndef from_graph(g: Any) -> Sink[Any, Any]: ...",
        "foreach": (
            "@staticmethod\ndef foreach(f: Callable[[T], object])"
            " -> Sink[T, asyncio.Future[DoneType]]: ..."
        ),
        "foreach_async": (
            "@staticmethod\ndef foreach_async(\n    parallelism: int, f: Callable[[T], "
            "Awaitable[object]]\n) -> Sink[T, asyncio.Future[DoneType]]: ..."
        ),
        "fold": (
            "@staticmethod\ndef fold(zero: U, f: Callable[[U, T], U])"
            " -> Sink[T, asyncio.Future[U]]: ..."
        ),
        "fold_async": (
            "@staticmethod\ndef fold_async(\n    zero: U, f: Callable[[U, T], Awaitable[U]]\n"
            ") -> Sink[T, asyncio.Future[U]]: ..."
        ),
        "reduce": (
            "@staticmethod\ndef reduce(f: Callable[[T, T], T]) -> Sink[T, asyncio.Future[T]]: ..."
        ),
        "head": "@staticmethod\ndef head() -> Sink[T, asyncio.Future[T]]: ...",
        "head_option": "@staticmethod\ndef head_option() -> Sink[T, asyncio.Future[T | None]]: ...",
        "last": "@staticmethod\ndef last() -> Sink[T, asyncio.Future[T]]: ...",
        "last_option": "@staticmethod\ndef last_option() -> Sink[T, asyncio.Future[T | None]]: ...",
        "seq": "@staticmethod\ndef seq() -> Sink[T, asyncio.Future[list[T]]]: ...",
        "take_last": (
            "@staticmethod\ndef take_last(n: int) -> Sink[T, asyncio.Future[list[T]]]: ..."
        ),
        "ignore": "@staticmethod\ndef ignore() -> Sink[object, asyncio.Future[DoneType]]: ...",
        "cancelled": "@staticmethod\ndef cancelled() -> Sink[object, NotUsedType]: ...",
        "on_complete": (
            "@staticmethod\ndef on_complete(\n    cb: Callable[[BaseException | None], object]\n"
            ") -> Sink[object, NotUsedType]: ..."
        ),
        "combine": (
            "@staticmethod\ndef combine(\n    a: Sink[T, Any],\n    b: Sink[T, Any],\n"
            "    *more: Sink[T, Any],\n    strategy: Callable[[int], Any] | None = ...,\n"
            ") -> Sink[T, NotUsedType]: ..."
        ),
        "queue": (
            "@staticmethod\ndef queue(max_concurrent_pulls: int = ...) -> Sink[Any, SinkQueue]: ..."
        ),
        "lazy_sink": (
            "@staticmethod\ndef lazy_sink(\n    factory: Callable[[], Sink[T, M2]]\n"
            ") -> Sink[T, asyncio.Future[M2]]: ..."
        ),
    },
    "RunnableGraph": {
        "__init__": "def __init__(self, module: Module) -> None: ...",
        "map_materialized_value": (
            "def map_materialized_value(self, f: Callable[[Mat], M2]) -> RunnableGraph[M2]: ..."
        ),
        "run": "def run(self, materializer: Materializer | None = ...) -> Mat: ...",
        "from_graph": "@staticmethod\ndef from_graph(g: Any) -> RunnableGraph[Any]: ...",
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
from .._ops.queues import SinkQueue, SourceQueue
from .._ops.sources import Cancellable
from .._ops.timer import ThrottleMode
from .._ops.watch import FlowMonitor
from .._ops.window_specs import EmitStrategy, Windowed, WindowSpec
from .._stage.logic import GraphStageWithMaterializedValue
from .._stage.shapes import Shape
from ..state._spec import StoreSpec
from ..state._view import StoreView
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
            lines.append(_render_fallback(kind_name, cls, name))
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

Out = TypeVar("Out", covariant=True)
Ctx = TypeVar("Ctx", covariant=True)
Mat = TypeVar("Mat", covariant=True)
In = TypeVar("In", contravariant=True)
CtxIn = TypeVar("CtxIn", contravariant=True)
CtxOut = TypeVar("CtxOut", covariant=True)
T = TypeVar("T")
U = TypeVar("U")
C = TypeVar("C")
C2 = TypeVar("C2")
M = TypeVar("M")
M2 = TypeVar("M2")
M3 = TypeVar("M3")
K = TypeVar("K")
S = TypeVar("S")
"""

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

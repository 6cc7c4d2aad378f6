"""The error trees: one root per package, every error defined in its package's errors
module and drawn in that module's docstring, exported under its public name.

- ``reactive``: root :class:`reactive.StreamError`; the tree is drawn in
  ``reactive/_errors.py`` (the subtrees of the optional subpackages again in
  ``reactive/io/errors.py`` and ``reactive/state/errors.py``, where those errors live).
- ``connectors.kafka``: root :class:`connectors.kafka.KafkaConnectorError`, drawn in
  ``connectors/kafka/errors.py``.

The trees are parsed from the docstrings (both drawing styles: ``+--`` and ``├──``) and
checked against the classes: the parent drawn is the first base, the other bases are named
in the line's ``(also ...)``. Every exception a public module exports must be in a tree
(or in :data:`OUTSIDE`, with the reason), carry the ``__module__`` of its shortest public
module (``reactive.NoSuchElementError``), pickle, and show its docstring in ``help()``.
An AST scan makes sure no other module defines an exception class.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import inspect
import pickle
import pkgutil
import pydoc
import re
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiokafka.errors
import pytest

import connectors
import connectors.kafka
import connectors.kafka.errors
import reactive
import reactive._errors
import reactive.io
import reactive.rs
import reactive.state

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]

#: The root error of each package: every error a module of the package exports is one.
PACKAGE_ROOTS: dict[str, type[BaseException]] = {
    "reactive": reactive.StreamError,
    "connectors.kafka": connectors.kafka.KafkaConnectorError,
}

#: The modules that define the errors, each drawing its tree in its docstring.
ERROR_MODULES = [
    "reactive._errors",
    "reactive.io.errors",
    "reactive.state.errors",
    "connectors.kafka.errors",
]

#: Exception classes defined outside the error modules (found by name) and why.
OUTSIDE: dict[str, str] = {
    "ExpectationError": (
        "reactive.testkit: a probe expectation that failed is an AssertionError, the way "
        "pytest reports a failed check; it is a test helper's, not a stream error"
    ),
    "BrokerStartError": (
        "connectors.kafka.testkit: the test helper's embedded broker did not start; a "
        "RuntimeError of the test tooling, which no stage raises"
    ),
    "_StoreFailed": (
        "reactive/_ops/state.py: a private control-flow signal, raised and caught inside "
        "the keyed-state logic to tell a store failure from an upstream one; never escapes"
    ),
    "_Closing": (
        "connectors/kafka/_stages/consumer.py: a private control-flow signal of the "
        "poller (a close was requested while it waited); caught there, never escapes"
    ),
}


# -- what the packages export ----------------------------------------------------------


@functools.cache
def public_modules() -> dict[str, Any]:
    """Every importable public module (no ``_``-prefixed part) that has an ``__all__``."""
    found: dict[str, Any] = {"reactive": reactive, "connectors.kafka": connectors.kafka}
    for pkg in (reactive, connectors):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if any(part.startswith("_") for part in info.name.split(".")):
                continue
            module = importlib.import_module(info.name)
            if hasattr(module, "__all__"):
                found[info.name] = module
    return found


def exported() -> Iterator[tuple[str, str, Any]]:
    """``(module, name, object)`` for every name in a public module's ``__all__``."""
    for module_name, module in sorted(public_modules().items()):
        for name in module.__all__:
            yield module_name, name, getattr(module, name)


def exported_errors() -> dict[type[BaseException], list[str]]:
    """Each exception class a public module exports -> the modules exporting it."""
    errors: dict[type[BaseException], list[str]] = {}
    for module_name, _, obj in exported():
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            errors.setdefault(obj, []).append(module_name)
    return errors


def package_of(module_name: str) -> str:
    return next(p for p in PACKAGE_ROOTS if module_name == p or module_name.startswith(p + "."))


# -- the documented trees ---------------------------------------------------------------

_ENTRY = re.compile(r"^(?P<lead>[\s|│]*(?:\+--|├──|└──)\s*)(?P<name>[A-Z]\w*)(?P<rest>.*)$")
_ROOT_LINE = re.compile(r"^(?P<lead>\s*)(?P<name>[A-Z]\w*)(?P<rest>.*)$")


def literal_blocks(doc: str) -> Iterator[list[str]]:
    """The indented blocks that follow a line ending in ``::`` (reST literal blocks)."""
    lines = inspect.cleandoc(doc).splitlines()
    for i, line in enumerate(lines):
        if not line.rstrip().endswith("::"):
            continue
        indent = len(line) - len(line.lstrip())
        block: list[str] = []
        for following in lines[i + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            block.append(following)
        while block and not block[-1].strip():
            block.pop()
        yield [b for b in block if b.strip()]


def parse_tree(doc: str) -> dict[str, tuple[str | None, str]]:
    """``name -> (documented parent, the rest of its line)`` for each class drawn in the
    docstring's trees; a tree's first line is its root (parent ``None``). Continuation
    lines (no ``+--``/``├──`` before a name) are skipped."""
    tree: dict[str, tuple[str | None, str]] = {}
    for block in literal_blocks(doc):
        stack: list[tuple[int, str]] = []  # (column of the name, name), outermost first
        for i, line in enumerate(block):
            match = _ROOT_LINE.match(line) if i == 0 else _ENTRY.match(line)
            if match is None:
                continue
            column = len(match["lead"])
            while stack and stack[-1][0] >= column:
                stack.pop()
            parent = stack[-1][1] if stack else None
            name = match["name"]
            if name in tree and parent is not None and tree[name][0] is not None:
                assert tree[name][0] == parent, f"{name} drawn under {tree[name][0]} and {parent}"
            if parent is not None or name not in tree:
                tree[name] = (parent, match["rest"])
            stack.append((column, name))
    return tree


def documented() -> dict[str, tuple[str | None, str]]:
    """The trees of every error module, merged: a subtree drawn again elsewhere must agree."""
    merged: dict[str, tuple[str | None, str]] = {}
    for module_name in ERROR_MODULES:
        doc = importlib.import_module(module_name).__doc__ or ""
        for name, (parent, rest) in parse_tree(doc).items():
            if name in merged and parent is not None and merged[name][0] is not None:
                assert merged[name][0] == parent, (
                    f"{module_name} draws {name} under {parent}, another tree under "
                    f"{merged[name][0]}"
                )
            if parent is not None or name not in merged:
                merged[name] = (parent, rest)
    return merged


def also_names(rest: str) -> set[str]:
    """The class names in the ``(also ...)`` (or a root's ``(...)``) of a tree line."""
    match = re.match(r"\s*\((?:also\s+)?([^)]*)\)", rest)
    return set(re.findall(r"\b[A-Z]\w*", match[1])) if match else set()


def test_the_tree_parser_reads_both_drawing_styles() -> None:
    doc = """Errors.

    ::

        Exception
         +-- AError                 base
              +-- BError            (also a ValueError) b
              |    +-- CError       (also a KeyError, BError) c
              |                     more words about C
              +-- DError            d

    And::

        KRoot (RuntimeError)
        ├── KOne (also aiokafka KafkaError, ConnectionError):
        │       continued
        └── KTwo: two
            └── KThree: three
    """
    tree = parse_tree(doc)
    assert {name: parent for name, (parent, _) in tree.items()} == {
        "Exception": None,
        "AError": "Exception",
        "BError": "AError",
        "CError": "BError",
        "DError": "AError",
        "KRoot": None,
        "KOne": "KRoot",
        "KTwo": "KRoot",
        "KThree": "KTwo",
    }
    assert also_names(tree["CError"][1]) == {"KeyError", "BError"}
    assert also_names(tree["KOne"][1]) == {"KafkaError", "ConnectionError"}
    assert also_names(tree["KRoot"][1]) == {"RuntimeError"}
    assert also_names(tree["DError"][1]) == set()


def test_every_exported_error_is_under_its_package_root_and_in_the_tree() -> None:
    tree = documented()
    problems = []
    for error, modules in exported_errors().items():
        if error.__name__ in OUTSIDE:
            continue
        for module_name in modules:
            root = PACKAGE_ROOTS[package_of(module_name)]
            if not issubclass(error, root):
                problems.append(f"{module_name}.{error.__name__} is not a {root.__name__}")
        if error.__name__ not in tree:
            problems.append(f"{error.__name__} ({modules[0]}) is not in a documented tree")
    assert not problems, "\n".join(problems)


def test_the_documented_trees_match_the_classes() -> None:
    tree = documented()
    classes: dict[str, type[BaseException]] = {"Exception": Exception}
    for error in exported_errors():
        classes[error.__name__] = error
    problems = []
    for name, (parent, rest) in tree.items():
        if name == "Exception":
            continue
        cls = classes.get(name)
        if cls is None:
            problems.append(f"{name} is drawn but no public module exports it")
            continue
        bases = [b.__name__ for b in cls.__bases__]
        if parent is not None and bases[0] != parent:
            problems.append(f"{name} is drawn under {parent}, its first base is {bases[0]}")
        extra = set(bases[1:]) if parent is not None else set(bases) - {"Exception"}
        named = also_names(rest)
        if extra - named:
            problems.append(f"{name}: its line does not name its bases {sorted(extra - named)}")
        mro = {c.__name__ for c in cls.__mro__}
        if named - mro:
            problems.append(f"{name}: its line names {sorted(named - mro)}, not its bases")
    assert not problems, "\n".join(problems)


def test_each_package_has_one_root() -> None:
    tree = documented()
    assert tree["StreamError"][0] == "Exception"
    assert tree["KafkaConnectorError"][0] is None
    # Kept as today: a RuntimeError (like aiokafka's KafkaError), not a StreamError; the
    # module docstring says why.
    assert connectors.kafka.KafkaConnectorError.__bases__ == (RuntimeError,)
    assert not issubclass(connectors.kafka.KafkaConnectorError, reactive.StreamError)
    assert "Not a ``reactive.StreamError``" in (connectors.kafka.errors.__doc__ or "")
    for name, reason in OUTSIDE.items():
        if not name.startswith("_"):
            assert name not in tree, f"{name} is allowed outside the tree ({reason})"
    kafka_doc = connectors.kafka.errors.__doc__ or ""
    assert "BrokerStartError" in kafka_doc and "ExpectationError" in reactive._errors.__doc__


def test_the_stdlib_bases_are_kept() -> None:
    """Existing ``except ValueError`` / ``except TimeoutError`` ... keep catching these."""
    k = connectors.kafka
    expected: dict[type[BaseException], type[BaseException]] = {
        reactive.StreamTimeoutError: TimeoutError,
        reactive.SubscriptionTimeoutError: TimeoutError,
        reactive.NoSuchElementError: LookupError,
        reactive.IllegalGraphError: ValueError,
        reactive.PartitionOutOfBoundsError: IndexError,
        reactive.QueueConcurrencyError: RuntimeError,
        k.KafkaConnectorError: RuntimeError,
        k.ProducerSerializationError: ValueError,
        k.DeserializationError: ValueError,
        k.ConsumerConnectionError: ConnectionError,
        k.CommitTimeoutError: TimeoutError,
        k.RecordTooLargeError: aiokafka.errors.MessageSizeTooLargeError,
        k.ProducerConnectionError: aiokafka.errors.KafkaConnectionError,
        k.MissingCodecError: aiokafka.errors.UnsupportedCodecError,
        k.TableNotReadyError: k.KafkaConnectorError,
        k.KafkaTransactionError: k.KafkaProducerError,
        k.ProducerSerializationError: k.KafkaProducerError,
    }
    for cls, base in expected.items():
        assert issubclass(cls, base), f"{cls.__name__} is no longer a {base.__name__}"


# -- public names -----------------------------------------------------------------------


def expected_modules() -> dict[Any, set[str]]:
    """Each class or function of ours a public module exports -> the shortest public
    modules exporting it (the ones its ``__module__`` may name)."""
    exporters: dict[int, tuple[Any, set[str]]] = {}
    for module_name, _, obj in exported():
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if obj.__module__.partition(".")[0] not in ("reactive", "connectors"):
            continue  # a third-party name re-exported (aiokafka's TopicPartition)
        exporters.setdefault(id(obj), (obj, set()))[1].add(module_name)
    result: dict[Any, set[str]] = {}
    for obj, modules in exporters.values():
        depth = min(m.count(".") for m in modules)
        result[obj] = {m for m in modules if m.count(".") == depth}
    return result


def test_exported_names_carry_their_public_module() -> None:
    wrong = [
        f"{obj.__qualname__}: __module__ {obj.__module__!r}, expected one of {sorted(modules)}"
        for obj, modules in expected_modules().items()
        if obj.__module__ not in modules
    ]
    assert not wrong, "\n".join(wrong)


def test_tracebacks_and_reprs_say_the_public_name() -> None:
    error = reactive.NoSuchElementError("head of an empty stream")
    assert traceback.format_exception_only(error) == [
        "reactive.NoSuchElementError: head of an empty stream\n"
    ]
    assert repr(reactive.NoSuchElementError) == "<class 'reactive.NoSuchElementError'>"
    assert repr(reactive.io.FramingError) == "<class 'reactive.io.FramingError'>"
    assert repr(reactive.state.StoreClosedError) == "<class 'reactive.state.StoreClosedError'>"
    assert repr(reactive.rs.SubscriptionRejectedError) == (
        "<class 'reactive.rs.SubscriptionRejectedError'>"
    )
    assert repr(connectors.kafka.TableNotReadyError) == (
        "<class 'connectors.kafka.TableNotReadyError'>"
    )
    assert repr(reactive.Source) == "<class 'reactive.Source'>"


async def test_a_failed_stream_raises_the_public_name(materializer: Any) -> None:
    with pytest.raises(reactive.NoSuchElementError) as info:
        await reactive.Source.empty().run_with(reactive.Sink.head(), materializer)
    assert "".join(traceback.format_exception_only(info.value)).startswith(
        "reactive.NoSuchElementError: "
    )


def _example_argument(parameter: inspect.Parameter) -> Any:
    annotation = str(parameter.annotation)
    if "bytes" in annotation:
        return b"tail of stderr"
    if "int" in annotation:
        return 7
    return f"{parameter.name} value"


def example(cls: type[BaseException]) -> BaseException:
    """An instance of ``cls`` built through its ``__init__`` with made-up arguments."""
    if not any("__init__" in vars(c) for c in cls.__mro__ if c.__module__ != "builtins"):
        return cls("a message")  # Exception's own __init__ (no signature to read)
    args = [
        _example_argument(p)
        for p in inspect.signature(cls).parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    return cls(*args)


def test_every_exported_error_pickles() -> None:
    errors = list(exported_errors())
    assert len(errors) > 40
    for cls in errors:
        error = example(cls)
        error.add_note("a note")
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is cls
        assert copy.args == error.args, cls
        assert str(copy) == str(error), cls
        assert vars(copy) == vars(error), cls
        assert pickle.loads(pickle.dumps(cls)) is cls
    extra = connectors.kafka.DeserializationError("bad", "topic", 1, 42, "value")
    assert vars(pickle.loads(pickle.dumps(extra)))["offset"] == 42


def test_help_shows_the_public_module_and_the_docstring() -> None:
    for obj in expected_modules():
        if not (inspect.isclass(obj) and issubclass(obj, BaseException)):
            continue
        text = pydoc.render_doc(obj, renderer=pydoc.plaintext)
        assert f"in module {obj.__module__}" in text, obj
        summary = (inspect.getdoc(obj) or "").splitlines()[0]
        assert summary and summary in text, obj


# -- no exception class outside the error modules ----------------------------------------


def _base_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript):
        return _base_name(node.value)
    return None


def exception_classes(sources: dict[str, str], known: set[str]) -> list[tuple[str, str]]:
    """``(file, class)`` for every class, at any depth, whose bases lead by name to
    ``known`` exception names (resolved through the classes found, to a fixed point)."""
    defs = []
    for path, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                defs.append((path, node.name, {_base_name(b) for b in node.bases}))
    names = set(known)
    changed = True
    while changed:
        changed = False
        for _, name, bases in defs:
            if name not in names and bases & names:
                names.add(name)
                changed = True
    return [(path, name) for path, name, bases in defs if bases & names]


def known_exception_names() -> set[str]:
    names = set()
    for namespace in (vars(builtins), vars(aiokafka.errors)):
        for name, obj in namespace.items():
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                names.add(name)
    return names


def test_the_scan_finds_exception_classes() -> None:
    source = (
        "class A(ValueError): pass\n"
        "class B(A): pass\n"
        "class C(errors.KafkaError): pass\n"
        "def f():\n"
        "    class D(B): pass\n"
        "class E(Generic[T]): pass\n"
        "class F(E): pass\n"
    )
    found = exception_classes({"m.py": source}, known_exception_names())
    assert sorted(name for _, name in found) == ["A", "B", "C", "D"]


def test_no_module_outside_the_error_modules_defines_an_exception() -> None:
    allowed = {str(Path(*m.split("."))) + ".py" for m in ERROR_MODULES}
    sources = {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
        for package in ("reactive", "connectors")
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    found = exception_classes(sources, known_exception_names())
    outside = [
        f"{path}: {name}" for path, name in found if path not in allowed and name not in OUTSIDE
    ]
    assert not outside, "define these in the package's errors module:\n" + "\n".join(outside)
    unused = set(OUTSIDE) - {name for _, name in found}
    assert not unused, f"stale entries in OUTSIDE: {sorted(unused)}"
    for name in OUTSIDE:
        if name.startswith("_"):
            assert all(name not in m.__all__ for m in public_modules().values()), name


# -- the README -------------------------------------------------------------------------


def test_readme_errors_section_draws_every_error() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Errors\n")
    end = text.find("\n## ", start + 1)
    section = text[start:end]
    missing = [name for name in documented() if name != "Exception" and name not in section]
    assert not missing, f"README's Errors section does not show {missing}"

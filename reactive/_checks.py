"""Argument checks run when an operator is built, never per element.

A blueprint method opens with one call::

    check("map_async(parallelism, f)", pos_int(parallelism), fn(f))

The first argument is the operator's signature as users see it; each rule after it
checks the parameter at the same position. A bad argument raises at once, naming the
operator, the parameter and what it got::

    TypeError: map(f): f must be callable, got int 5
    TypeError: map_async(parallelism, f): parallelism must be a positive int, got
        function fetch; did you swap the arguments?

``TypeError`` for a value of the wrong kind, ``ValueError`` for a value of the right kind
out of range (``grouped(n): n must be >= 1, got 0``). Stages keep their own checks as a
second line for users who build them directly.

Also here: the message for a ``None`` element (RS rule 2.13), shared by every place that
refuses one.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable
from typing import Any, NamedTuple

__all__ = [
    "NONE_ELEMENT",
    "check",
    "fn",
    "opt_fn",
    "int_at_least",
    "opt_int_at_least",
    "integer",
    "pos_int",
    "seconds",
    "string",
    "iterable",
    "exception",
    "element",
    "describe",
]

NONE_ELEMENT = (
    "Cannot push None: elements must not be None (RS rule 2.13); "
    "is it a function missing its return?"
)
"""What every stage says when ``None`` would be emitted: ``None`` is not an element."""


class Rule(NamedTuple):
    """One parameter's requirement: ``kind`` (what it must be) and the value it got."""

    kind: str
    value: Any
    low: float | None = 0
    strict: bool = False
    optional: bool = False


def fn(value: Any) -> Rule:
    """The parameter must be callable."""
    return Rule("fn", value)


def opt_fn(value: Any) -> Rule:
    """The parameter must be callable or None."""
    return Rule("fn", value, optional=True)


def int_at_least(value: Any, low: int) -> Rule:
    """The parameter must be an int (not a bool) ``>= low``."""
    return Rule("int", value, low)


def opt_int_at_least(value: Any, low: int) -> Rule:
    """The parameter must be None or an int ``>= low``."""
    return Rule("int", value, low, optional=True)


def integer(value: Any) -> Rule:
    """The parameter must be an int (not a bool), of any sign."""
    return Rule("int", value, None)


def pos_int(value: Any) -> Rule:
    """The parameter must be an int ``>= 1``."""
    return Rule("int", value, 1)


def seconds(value: Any, strict: bool = True) -> Rule:
    """The parameter must be a finite number of seconds, ``> 0`` (``>= 0`` if not
    ``strict``)."""
    return Rule("num", value, 0, strict)


def string(value: Any) -> Rule:
    """The parameter must be a str."""
    return Rule("str", value)


def iterable(value: Any) -> Rule:
    """The parameter must be iterable (it is not iterated here)."""
    return Rule("iterable", value)


def exception(value: Any) -> Rule:
    """The parameter must be an exception instance."""
    return Rule("exc", value)


def element(value: Any) -> Rule:
    """The parameter becomes an element of the stream: anything but None."""
    return Rule("elem", value)


def describe(value: Any) -> str:
    """``int 5``, ``function fetch``, ``str 'a'``, ``None``: what a check got."""
    if value is None:
        return "None"
    if isinstance(value, type):
        return f"class {value.__qualname__}"
    name = getattr(value, "__name__", None)
    if callable(value) and isinstance(name, str):
        return f"function {name}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _params(signature: str) -> list[str]:
    inside = signature[signature.index("(") + 1 : signature.rindex(")")]
    return [p.strip().split("=")[0].strip() for p in inside.split(",") if p.strip()]


def _problem(rule: Rule) -> tuple[type[Exception], str] | None:
    """``None`` when ``rule`` holds, else the exception type and what it must be."""
    v = rule.value
    if v is None and rule.optional:
        return None
    kind = rule.kind
    if kind == "fn":
        if callable(v):
            return None
        return TypeError, "must be callable" + (" or None" if rule.optional else "")
    if kind == "str":
        return None if isinstance(v, str) else (TypeError, "must be a str")
    if kind == "iterable":
        ok = isinstance(v, Iterable) or hasattr(type(v), "__getitem__")
        return None if ok else (TypeError, "must be iterable")
    if kind == "exc":
        ok = isinstance(v, BaseException)
        return None if ok else (TypeError, "must be an exception instance")
    if kind == "elem":
        if v is None:
            return ValueError, "must not be None (None is not an element, RS rule 2.13)"
        return None
    if kind == "int":
        low = None if rule.low is None else int(rule.low)
        try:  # int, or an integer type of another library (``__index__``), not a bool
            n = None if isinstance(v, bool) else operator.index(v)
        except TypeError:
            n = None
        if n is None:
            what = {None: "an int", 1: "a positive int", 0: "an int >= 0"}.get(low)
            what = what or f"an int >= {low}"
            return TypeError, f"must be {what}" + (" or None" if rule.optional else "")
        return None if low is None or n >= low else (ValueError, f"must be >= {low}")
    # "num": a number of seconds
    op = ">" if rule.strict else ">="
    if not isinstance(v, numbers.Real) or isinstance(v, bool):
        return TypeError, f"must be a number of seconds {op} 0"
    x = float(v)
    if not math.isfinite(x):
        return ValueError, "must be a finite number of seconds"
    if x > 0 or (x == 0 and not rule.strict):
        return None
    return ValueError, f"must be {op} 0"


def check(signature: str, *rules: Rule | None) -> None:
    """Check each rule against the parameter at its position in ``signature``
    (``"name(p1, p2, ...)"``; ``None`` skips a parameter); raise ``TypeError`` /
    ``ValueError`` for the first that fails, naming the operator and the parameter."""
    bad = None
    for i, r in enumerate(rules):
        if r is not None:
            p = _problem(r)
            if p is not None:
                bad = (i, r, p)
                break
    if bad is None:
        return
    i, rule, (exc_type, must) = bad
    name = _params(signature)[i]
    got = describe(rule.value) if exc_type is TypeError else repr(rule.value)
    message = f"{signature}: {name} {must}, got {got}"
    # A callable where a number goes and a non-callable where a function goes: the
    # usual cause is arguments given in the wrong order.
    given = [r for r in rules if r is not None]
    wants_fn = [r for r in given if r.kind == "fn"]
    got_fn_for_other = any(r.kind != "fn" and callable(r.value) for r in given)
    got_other_for_fn = any(not callable(r.value) and r.value is not None for r in wants_fn)
    if got_fn_for_other and got_other_for_fn:
        message += "; did you swap the arguments?"
    raise exc_type(message)

"""A failing function looks the same whether a fused run or its operator's own stage ran it.

Found by an exploratory review: with fast paths on, a function's exception carried the note
"raised by the function given to map (stage [map])" and without them none; a ``None``
result's error added ", in the fused chain map+filter". Both paths now give the same
exception: same type, message and notes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import Materializer, Sink, Source

OPS = ("map", "filter", "filter_not", "scan", "drop_while")


def _function(kind: str, bad: int, how: str) -> Any:
    """The operator's function: it raises (or returns None) on the element ``bad``."""

    def hit(x: int) -> bool:
        if x == bad:
            if how == "raise":
                raise ValueError(f"{kind} failed on {x}")
            return True
        return False

    if kind == "map":
        return lambda x: None if hit(x) else x + 1
    if kind == "scan":
        return lambda acc, x: None if hit(x) else acc + x
    if kind == "drop_while":
        return lambda x: hit(x) or x < 0
    return lambda x: hit(x) or x % 3 != 1


def _build(chain: list[tuple[str, int, str]], names: list[bool]) -> Any:
    src: Any = Source.from_iterable(range(20))
    for i, (kind, bad, how) in enumerate(chain):
        f = _function(kind, bad, how)
        src = src.scan(0, f) if kind == "scan" else getattr(src, kind)(f)
        if names[i]:
            src = src.named(f"op{i}")
    return src


async def _outcome(chain: list[tuple[str, int, str]], names: list[bool], fast: bool) -> Any:
    async with Materializer(fast_paths=fast, metrics=False) as mat:
        try:
            return ("ok", await _build(chain, names).run_with(Sink.seq(), mat))
        except Exception as exc:  # compared below
            return (type(exc).__name__, str(exc), list(getattr(exc, "__notes__", [])))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chain=st.lists(
        st.tuples(st.sampled_from(OPS), st.integers(-1, 19), st.sampled_from(["raise", "none"])),
        min_size=1,
        max_size=4,
    ),
    names=st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_a_fused_run_fails_as_the_operators_own_stages_do(
    chain: list[tuple[str, int, str]], names: list[bool]
) -> None:
    fused = asyncio.run(_outcome(chain, names, True))
    plain = asyncio.run(_outcome(chain, names, False))
    assert fused == plain


def test_the_note_and_message_on_both_paths() -> None:
    chain = [("map", 2, "raise"), ("filter", -1, "raise")]
    for fast in (True, False):
        name, message, notes = asyncio.run(_outcome(chain, [True, False, False, False], fast))
        assert (name, message) == ("ValueError", "map failed on 2")
        assert notes == ["raised by the function given to map (stage [op0])"]
    chain = [("map", 2, "none"), ("filter", -1, "raise")]
    for fast in (True, False):
        name, message, _ = asyncio.run(_outcome(chain, [False] * 4, fast))
        assert name == "NoneElementError"
        assert message.endswith("(port 'Map.out')")

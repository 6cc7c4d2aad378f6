"""An exception raised by a function given to ``windowed`` (``key``, ``timestamp``,
``zero``, ``aggregate``, ``merge``) carries a note naming the function, the stage and the
element (as ``join_table``'s do), on every path: the tumbling and hopping fast paths, the
generic path (sessions, sliding), with contexts and with a store; C callables too."""

from __future__ import annotations

import operator
from typing import Any

import pytest

from reactive import (
    SessionWindows,
    Sink,
    SlidingWindows,
    Source,
    SourceWithContext,
    TimeWindows,
)
from reactive.state import Stores


def boom(*_: object) -> Any:
    raise KeyError("ts")


def notes_of(info: pytest.ExceptionInfo[BaseException]) -> str:
    return " ".join(getattr(info.value, "__notes__", []))


# From the pending e2e report: Source.single({}) into tumbling windows.
@pytest.mark.parametrize("which", ["key", "timestamp", "aggregate"])
async def test_a_windowed_function_that_raises_is_noted_with_its_stage(which: str) -> None:
    fns: dict[str, Any] = {
        "key": lambda o: "k",
        "timestamp": lambda o: 1.0,
        "aggregate": lambda n, o: n + 1,
    }
    fns[which] = boom
    src = Source.single({}).windowed(TimeWindows.of(60), zero=lambda: 0, **fns)
    with pytest.raises(KeyError) as info:
        await src.run_with(Sink.seq())
    notes = notes_of(info)
    assert "windowed" in notes and which in notes, notes


SPECS = {
    "tumbling": TimeWindows.of(60),
    "hopping": TimeWindows.of(60).advance_by(20),
    "sliding": SlidingWindows.of(60),
    "session": SessionWindows.with_gap(10),
}


def poisoned(f: Any) -> Any:
    """``f``, raising for the element marked poison (its last argument)."""

    def g(*args: Any) -> Any:
        if "poison" in args[-1]:
            raise KeyError("ts")
        return f(*args)

    return g


@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("which", ["key", "timestamp", "zero", "aggregate"])
async def test_each_function_is_named_with_the_element(spec: str, which: str) -> None:
    fns: dict[str, Any] = {
        "key": lambda o: o["k"],
        "timestamp": lambda o: o["t"],
        "zero": lambda: 0,
        "aggregate": lambda n, o: n + 1,
        "merge": operator.add,
    }
    # zero runs for the first element's window: it fails there; the others on the poison.
    fns[which] = boom if which == "zero" else poisoned(fns[which])
    elems = [{"k": "a", "t": 1}, {"k": "a", "t": 2, "poison": True}]
    with pytest.raises(KeyError) as info:
        await Source.from_iterable(elems).windowed(SPECS[spec], **fns).run_with(Sink.seq())
    notes = notes_of(info)
    assert f"raised by the {which} function given to windowed (stage [" in notes, notes
    shown = "'poison': True" if which != "zero" else "{'k': 'a', 't': 1}"
    assert shown in notes, notes


async def test_merge_of_sessions_is_named() -> None:
    elems = [("a", 1), ("a", 20), ("a", 10)]  # 10 bridges the two sessions: merge runs
    src = Source.from_iterable(elems).windowed(
        SessionWindows.with_gap(10).grace(100),
        key=lambda c: c[0],
        timestamp=lambda c: c[1],
        zero=lambda: 0,
        aggregate=lambda n, c: n + 1,
        merge=boom,
    )
    with pytest.raises(KeyError) as info:
        await src.run_with(Sink.seq())
    notes = notes_of(info)
    assert "raised by the merge function given to windowed" in notes, notes
    assert "('a', 10)" in notes, notes


async def test_a_c_callable_is_named_too() -> None:
    # operator.itemgetter raises from C: no Python frame of the user's to find.
    src = Source.from_iterable([{"k": "a"}]).windowed(
        TimeWindows.of(60), key=operator.itemgetter("k"), timestamp=operator.itemgetter("ts")
    )
    with pytest.raises(KeyError) as info:
        await src.run_with(Sink.seq())
    assert "raised by the timestamp function given to windowed" in notes_of(info)


async def test_with_context_and_with_a_store_the_user_element_is_shown() -> None:
    pairs = [({"k": "a"}, ("p0", 0))]
    with pytest.raises(KeyError) as info:
        await (
            SourceWithContext.from_tuples(Source.from_iterable(pairs))
            .windowed(TimeWindows.of(60), key=lambda o: o["k"], timestamp=lambda o: o["ts"])
            .run_with(Sink.seq())
        )
    notes = notes_of(info)
    assert "raised by the timestamp function given to windowed" in notes, notes
    assert "for element {'k': 'a'}" in notes, notes  # not the internal record
    with pytest.raises(KeyError) as info:
        await (
            Source.from_iterable([{"k": "a", "ts": 1}])
            .windowed(
                TimeWindows.of(60),
                key=lambda o: o["k"],
                timestamp=lambda o: o["ts"],
                zero=lambda: 0,
                aggregate=lambda n, o: n + o["n"],
                store=Stores.in_memory("w"),
            )
            .run_with(Sink.seq())
        )
    notes = notes_of(info)
    assert "raised by the aggregate function given to windowed" in notes, notes


async def test_our_own_checks_are_not_blamed_on_the_function() -> None:
    # A timestamp that returns a str: the stage's TypeError says so, no "raised by" note.
    src = Source.single({}).windowed(TimeWindows.of(60), timestamp=lambda o: "x")
    with pytest.raises(TypeError) as info:
        await src.run_with(Sink.seq())
    assert "timestamp returned 'x'" in str(info.value)
    assert "raised by" not in notes_of(info)

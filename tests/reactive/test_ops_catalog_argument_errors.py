"""Bad arguments to the fan-in / fan-out operators and BidiFlow name the operator and
what they got (they said "not a graph or stage: [...]" or "fan-in input 1 ..." before)."""

from __future__ import annotations

from typing import Any

import pytest

from reactive import BidiFlow, DelayStrategy, Flow, IllegalGraphError, Sink, Source


def src() -> Source[int, Any]:
    return Source.from_iterable([1, 2])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: src().merge_all([[1]]), r"merge_all: input 1: not a graph or stage: list \[1\]"),
        (lambda: src().merge_all([src(), Sink.ignore()]), r"merge_all: input 2 must be a Source"),
        (
            lambda: src().interleave_all([5], 1),
            r"interleave_all: input 1: not a graph or stage: int",
        ),
        (lambda: src().merge_latest([1]), r"merge_latest: input 1: not a graph or stage: list"),
        (lambda: src().merge_preferred([1], True), r"merge_preferred: input 1: not a graph"),
        (lambda: src().also_to_all([Sink.ignore()]), r"also_to_all: not a graph or stage: list"),
        (lambda: src().also_to_all(Flow[int]()), r"also_to_all needs a Sink, got FlowShape"),
        (lambda: BidiFlow.identity().atop(5), r"atop.*: not a graph or stage: int 5"),
        (lambda: BidiFlow.identity().join(Sink.ignore()), r"join.* needs a Flow"),
    ],
)
def test_the_operator_and_the_value_are_named(build: Any, message: str) -> None:
    with pytest.raises(IllegalGraphError, match=message):
        build()


def test_merge_preferred_wants_a_bool() -> None:
    with pytest.raises(TypeError, match=r"merge_preferred\(that, preferred\): .* got str 'yes'"):
        src().merge_preferred(src(), "yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("factory", ["zip_n", "zip_with_n"])
@pytest.mark.parametrize(
    ("sources", "error", "message"),
    [
        (None, TypeError, r"sources must be an iterable of Sources, got NoneType"),
        (Source.single(1), TypeError, r"sources must be an iterable of Sources, got Source"),
        ([1], IllegalGraphError, r"source 0: not a graph or stage: int 1"),
        ([Flow[int]()], IllegalGraphError, r"source 0 must be a Source, got FlowShape"),
        ([src(), Sink.ignore()], IllegalGraphError, r"source 1 must be a Source, got SinkShape"),
    ],
)
def test_n_ary_zips_check_their_sources(
    factory: str, sources: Any, error: type[Exception], message: str
) -> None:
    build = (
        (lambda: Source.zip_n(sources))
        if factory == "zip_n"
        else (lambda: Source.zip_with_n(list, sources))
    )
    with pytest.raises(error, match=rf"Source\.{factory}\(.*{message}"):
        build()


def test_delay_with_names_itself_and_refuses_an_infinite_fixed_delay() -> None:
    with pytest.raises(TypeError, match=r"delay_with\(.*overflow_strategy must be an Overflow"):
        src().delay_with(lambda: DelayStrategy.fixed_delay(1), "x", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"fixed_delay\(seconds\): .* finite .* got inf"):
        DelayStrategy.fixed_delay(float("inf"))

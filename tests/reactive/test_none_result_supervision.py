"""A function that returns None fails as if it raised: supervision decides on it.

None is not an element (Reactive Streams rule 2.13): ``push(out, None)`` raises
:class:`reactive.NoneElementError`. Akka's ``push(out, null)`` throws a
NullPointerException inside the handler, where the operator's supervision decides on it as
on any exception its function throws: ``resume`` drops the element, ``restart`` drops it
and resets the operator's state (a scan emits its zero again). Found by an exploratory
review: a ``map`` whose function returned None failed the stream under ``resume`` (the
runtime exempted the error from supervision as a misuse of the port API).

Checked on both paths (the fused runs and each operator's own stage) against a reference
model of the chain, with hypothesis: random chains of map/filter/scan, each with its own
supervision, whose functions return None or raise on a chosen element.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import (
    Attributes,
    Flow,
    Materializer,
    NoneElementError,
    PortStateError,
    Sink,
    Source,
    Supervision,
)

DIRECTIVES = {d.value: d for d in (Supervision.stop, Supervision.resume, Supervision.restart)}
ZERO = 100

Op = tuple[str, int, str, str]  # kind, the element it fails on, "raise" | "none", directive


def _function(kind: str, bad: int, how: str) -> Any:
    def hit(x: Any) -> bool:
        if x == bad:
            if how == "raise":
                raise ValueError(f"{kind} failed on {x}")
            return True
        return False

    if kind == "map":
        return lambda x: None if hit(x) else x + 1
    if kind == "scan":
        return lambda acc, x: None if hit(x) else acc + x
    return lambda x: not hit(x) and x % 3 != 1  # filter (a None there is just falsy)


def _build(chain: list[Op], n: int) -> Any:
    src: Any = Source.from_iterable(range(n))
    for kind, bad, how, directive in chain:
        f = _function(kind, bad, how)
        flow: Any = Flow().scan(ZERO, f) if kind == "scan" else getattr(Flow(), kind)(f)
        decider = lambda e, d=DIRECTIVES[directive]: d  # noqa: E731
        src = src.via(flow.with_attributes(Attributes.supervision_strategy(decider)))
    return src


async def _outcome(chain: list[Op], n: int, fast: bool) -> Any:
    async with Materializer(fast_paths=fast, metrics=False) as mat:
        try:
            return ("ok", await _build(chain, n).run_with(Sink.seq(), mat))
        except Exception as exc:  # compared below
            return (type(exc).__name__, str(exc), list(getattr(exc, "__notes__", [])))


class _Failed(Exception):
    pass


def _model(chain: list[Op], n: int) -> Any:
    """What Akka's operators do, one element at a time through the chain."""
    fns = [_function(kind, bad, how) for kind, bad, how, _ in chain]
    acc: dict[int, Any] = {i: ZERO for i, op in enumerate(chain) if op[0] == "scan"}
    out: list[Any] = []

    def feed(i: int, x: Any) -> None:
        """Element ``x`` into operator ``i`` (and what it emits on through the rest)."""
        while i < len(chain):
            kind, _, _, directive = chain[i]
            try:
                if kind == "map":
                    x = fns[i](x)
                    if x is None:
                        raise NoneElementError("map")
                elif kind == "filter":
                    if not fns[i](x):
                        return
                else:
                    acc[i] = fns[i](acc[i], x)  # a None is kept, as Akka's aggregator
                    x = acc[i]
                    if x is None:
                        raise NoneElementError("scan")
            except Exception as exc:
                if directive == "stop":
                    raise _Failed(type(exc).__name__) from exc
                if directive == "restart" and kind == "scan":
                    acc[i] = ZERO
                    x = ZERO  # emitted again on the failed element's demand
                else:
                    return  # the element is dropped
            i += 1
        out.append(x)

    try:
        # Each scan emits its zero at the first pull, the last one's first.
        for i in reversed(sorted(acc)):
            feed(i + 1, ZERO)
        for x in range(n):
            feed(0, x)
    except _Failed as failed:
        return (str(failed),)
    return ("ok", out)


OPS = st.tuples(
    st.sampled_from(["map", "filter", "scan"]),
    st.integers(-1, 12),
    st.sampled_from(["raise", "none"]),
    st.sampled_from(sorted(DIRECTIVES)),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chain=st.lists(OPS, min_size=1, max_size=4), n=st.integers(0, 12))
def test_none_and_raise_are_decided_alike_on_both_paths_and_as_the_model(
    chain: list[Op], n: int
) -> None:
    fused = asyncio.run(_outcome(chain, n, True))
    plain = asyncio.run(_outcome(chain, n, False))
    assert fused == plain
    model = _model(chain, n)
    assert fused[: len(model)] == model


@pytest.mark.parametrize("fast", [True, False])
async def test_resume_drops_the_element_a_map_made_none(fast: bool) -> None:
    resume = Attributes.supervision_strategy(lambda exc: Supervision.resume)
    async with Materializer(fast_paths=fast) as mat:
        got = await (
            Source.from_iterable(range(6))
            .map(lambda x: None if x % 2 else x)
            .with_attributes(resume)
            .run_with(Sink.seq(), mat)
        )
    assert got == [0, 2, 4]


@pytest.mark.parametrize("fast", [True, False])
async def test_the_decider_sees_the_none_error_and_stop_fails_with_it(fast: bool) -> None:
    seen: list[BaseException] = []

    def decider(exc: BaseException) -> Supervision:
        seen.append(exc)
        return Supervision.stop

    async with Materializer(fast_paths=fast) as mat:
        with pytest.raises(NoneElementError) as info:
            await (
                Source.from_iterable([1, 2])
                .map(lambda x: None)
                .named("lookup")
                .add_attributes(Attributes.supervision_strategy(decider))
                .run_with(Sink.seq(), mat)
            )
    assert seen == [info.value]
    assert isinstance(info.value, PortStateError)  # what it was before: still caught so
    assert str(info.value).startswith("[lookup] Cannot push None")


@pytest.mark.parametrize("fast", [True, False])
async def test_a_source_emitting_none_still_fails_under_resume(fast: bool) -> None:
    """Only a supervised operator's function result is decided on: a None an iterable
    source hands over is not the map's failure."""
    resume = Attributes.supervision_strategy(lambda exc: Supervision.resume)
    async with Materializer(fast_paths=fast) as mat:
        with pytest.raises(NoneElementError, match=r"Cannot push None"):
            await (
                Source.from_iterable([1, None, 3])
                .map(lambda x: x)
                .with_attributes(resume)
                .run_with(Sink.seq(), mat)
            )


@pytest.mark.parametrize("directive", ["resume", "restart", "stop"])
@pytest.mark.parametrize("fast", [True, False])
async def test_zip_with_returning_none_is_decided_on_both_paths(fast: bool, directive: str) -> None:
    """``zip_with``'s batch path failed the stage on a None combination under resume,
    where the element path (its push raising) dropped it."""
    strategy = Attributes.supervision_strategy(lambda exc: DIRECTIVES[directive])
    async with Materializer(fast_paths=fast) as mat:
        got = (
            Source.from_iterable(range(6))
            .zip_with(Source.from_iterable(range(10, 16)), lambda a, b: None if a == 2 else a + b)
            .with_attributes(strategy)
            .run_with(Sink.seq(), mat)
        )
        if directive == "stop":
            with pytest.raises(NoneElementError):
                await got
        else:
            assert await got == [10, 12, 16, 18, 20]

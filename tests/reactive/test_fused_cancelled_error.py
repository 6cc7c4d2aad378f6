"""An ``asyncio.CancelledError`` raised by a fused operator's function, as by its own stage.

Since review6 the interpreter turns an ``asyncio.CancelledError`` raised by a stage's
synchronous code (a function calling ``result()`` of a cancelled future, say) into an
``AsyncCallCancelledError`` failing that stage, decided on by supervision. A fused run
caught ``Exception`` only in its generated loop, so:

1. under a resuming decider the fused path failed where the plain path resumed;
2. without supervision the note differed ("raised in stage [map] ..." on the fused path,
   "raised by the function given to map (stage [map])" on the plain one);
3. behind an async boundary with fast paths on, the lent run (``_serve_lent`` called
   from the boundary's flush on the upstream island) let the CancelledError escape into
   the upstream island: the downstream stream never completed.
4. the boundary's own hops (a hand-over running the ``on_push`` of the stage after it,
   a re-request running the ``on_pull`` of the stage before it) caught ``Exception``
   only: a stage there raising CancelledError hung the stream or failed the boundary's
   half in its place (fast paths on or off).

Both paths now give the same elements and the same failure (type, message, notes), and
supervision decides the same way; a differential property checks chains of fusable
operators, with and without an async boundary before them, fast paths on against off.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import (
    AsyncCallCancelledError,
    Attributes,
    Flow,
    Materializer,
    Sink,
    Source,
    Supervision,
)


def _f(x: int) -> int:
    if x == 2:
        raise asyncio.CancelledError()
    return x


async def test_fused_run_resumes_on_a_raised_cancelled_error() -> None:
    resume = Attributes.supervision_strategy(lambda e: Supervision.resume)
    async with Materializer(fast_paths=True) as mat:
        out = await (
            Source.from_iterable([1, 2, 3])
            .via(Flow().map(_f).with_attributes(resume))
            .run_with(Sink.seq(), mat)
        )
    assert out == [1, 3]


async def test_fused_run_fails_on_a_raised_cancelled_error_as_its_stage_does() -> None:
    outcomes = []
    for fast in (True, False):
        async with Materializer(fast_paths=fast) as mat:
            with pytest.raises(AsyncCallCancelledError) as info:
                await Source.from_iterable([1, 2, 3]).map(_f).run_with(Sink.seq(), mat)
        exc = info.value
        assert isinstance(exc.__cause__, asyncio.CancelledError)
        outcomes.append((str(exc), list(getattr(exc, "__notes__", []))))
    assert outcomes[0] == outcomes[1]
    assert "raised by the function given to map (stage [map])" in outcomes[0][1]


async def test_fused_run_behind_a_boundary_fails_on_a_raised_cancelled_error() -> None:
    def always(x: Any) -> Any:
        raise asyncio.CancelledError()

    async with Materializer(fast_paths=True) as mat:
        done = Source.from_iterable([1, 2]).async_boundary().map(always).run_with(Sink.seq(), mat)
        with pytest.raises(AsyncCallCancelledError, match=r"\[map\]"):
            await asyncio.wait_for(done, 5)


def _raising_from(bad: int) -> tuple[Any, Any]:
    """A ``take_while`` predicate and an ``unfold`` function raising CancelledError from
    ``bad`` on."""

    def pred(x: int) -> bool:
        if x >= bad:
            raise asyncio.CancelledError()
        return True

    def step(s: int) -> tuple[int, int] | None:
        if s >= bad:
            raise asyncio.CancelledError()
        return (s + 1, s) if s < 100 else None

    return pred, step


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("bad", [0, 16, 32])
@pytest.mark.parametrize("where", ["take_while", "unfold_source"])
async def test_a_stage_run_by_a_boundarys_hop_fails_on_a_raised_cancelled_error(
    where: str, bad: int, fast: bool
) -> None:
    """The boundary's hops run a stage's handler directly (the hand-over runs the
    ``on_push`` downstream, the re-request the ``on_pull`` upstream): a CancelledError
    its function raised there fails that stage (it escaped into the other island: the
    stream hung, or the boundary's half failed in its place)."""
    pred, step = _raising_from(bad)
    if where == "take_while":
        graph: Any = Source.from_iterable(range(200)).async_boundary().take_while(pred)
    else:
        graph = Source.unfold(0, step).async_boundary()
    async with Materializer(fast_paths=fast) as mat:
        done = graph.run_with(Sink.seq(), mat)
        with pytest.raises(AsyncCallCancelledError, match=rf"^\[{where}\] "):
            await asyncio.wait_for(done, 5)


OPS = ("map", "filter", "filter_not", "scan", "drop_while")
DECIDERS = ("none", "resume", "restart", "stop")


def _function(kind: str, bad: int, how: str) -> Any:
    """The operator's function: it raises ``how`` on the element ``bad``."""

    def hit(x: int) -> bool:
        if x == bad:
            if how == "cancelled":
                raise asyncio.CancelledError()
            raise ValueError(f"{kind} failed on {x}")
        return False

    if kind == "map":
        return lambda x: hit(x) or x + 1
    if kind == "scan":
        return lambda acc, x: hit(x) or acc + x
    if kind == "drop_while":
        return lambda x: hit(x) or x < 3
    return lambda x: hit(x) or x % 3 != 1


def _build(chain: list[tuple[str, int, str, str]], boundary: bool) -> Any:
    src: Any = Source.from_iterable(range(20))
    if boundary:
        src = src.async_boundary()
    for kind, bad, how, decider in chain:
        f = _function(kind, bad, how)
        flow: Any = Flow().scan(0, f) if kind == "scan" else getattr(Flow(), kind)(f)
        if decider != "none":
            directive = getattr(Supervision, decider)
            flow = flow.with_attributes(Attributes.supervision_strategy(lambda e, d=directive: d))
        src = src.via(flow)
    return src


async def _outcome(chain: list[tuple[str, int, str, str]], boundary: bool, fast: bool) -> Any:
    async with Materializer(fast_paths=fast, metrics=False) as mat:
        try:
            out = await asyncio.wait_for(_build(chain, boundary).run_with(Sink.seq(), mat), 10)
            return ("ok", out)
        except Exception as exc:  # compared below
            cause = exc.__cause__
            return (
                type(exc).__name__,
                str(exc),
                list(getattr(exc, "__notes__", [])),
                type(cause).__name__ if cause is not None else None,
            )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chain=st.lists(
        st.tuples(
            st.sampled_from(OPS),
            st.integers(-1, 19),
            st.sampled_from(["cancelled", "value"]),
            st.sampled_from(DECIDERS),
        ),
        min_size=1,
        max_size=4,
    ),
    boundary=st.booleans(),
)
def test_a_raised_cancelled_error_is_the_same_on_both_paths(
    chain: list[tuple[str, int, str, str]], boundary: bool
) -> None:
    fused = asyncio.run(_outcome(chain, boundary, True))
    plain = asyncio.run(_outcome(chain, boundary, False))
    assert fused == plain


class _CancellingIterator:
    """Gives 1, raises asyncio.CancelledError for the second element, then gives 3, 4."""

    def __init__(self) -> None:
        self.i = 0

    def __iter__(self) -> _CancellingIterator:
        return self

    def __next__(self) -> int:
        self.i += 1
        if self.i == 2:
            raise asyncio.CancelledError
        if self.i > 4:
            raise StopIteration
        return self.i


@pytest.mark.parametrize("fast", [True, False])
async def test_iterable_source_iterator_cancelled_error_is_supervised(fast: bool) -> None:
    # The source's own iterator raising CancelledError: a failure of the source, decided
    # on by its decider on both paths (resume goes on with the iterator).
    resume = Attributes.supervision_strategy(lambda exc: Supervision.resume)
    async with Materializer(fast_paths=fast) as mat:
        src = Source.from_iterable(_CancellingIterator()).with_attributes(resume)
        assert await asyncio.wait_for(src.map(lambda x: x).run_with(Sink.seq(), mat), 5) == [
            1,
            3,
            4,
        ]
    async with Materializer(fast_paths=fast) as mat:
        with pytest.raises(AsyncCallCancelledError) as info:
            await asyncio.wait_for(
                Source.from_iterable(_CancellingIterator())
                .map(lambda x: x)
                .run_with(Sink.seq(), mat),
                5,
            )
        assert isinstance(info.value.__cause__, asyncio.CancelledError)

"""A fused chain's per-batch entry points give what the element-at-a-time stages give.

``_FusedLogic._serve_lent`` (a chain behind an async boundary reading its buffer: the plain
run when the buffer fits the demand, the run bounded by the room otherwise) and
``_serve``'s fill (a chain taking from an iterable source) are the fast paths of one
batch. Checked against the same graph with fast paths off: the same elements in the same
order, the same failure (type, message), whichever supervision directive the operator
whose function raised is given, and a ``None`` a function returns failing the stream.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import Attributes, Flow, Keep, Materializer, Sink, Source, Supervision

if TYPE_CHECKING:
    from collections.abc import Iterator

DIRECTIVES = {
    "stop": Supervision.stop,
    "resume": Supervision.resume,
    "restart": Supervision.restart,
}


def _chain(bad: int, how: str, directive: str, kind: str) -> Flow[int, Any, Any]:
    """A filter passing a third, then ``kind`` (map or scan) whose function raises (or
    returns None) on the element ``bad``, supervised with ``directive``."""

    def hit(x: int) -> bool:
        if x == bad:
            if how == "raise":
                raise ValueError(f"{kind} failed on {x}")
            return True
        return False

    decider = DIRECTIVES[directive]
    flow = Flow[int]().filter(lambda x: x % 3 != 1)
    if kind == "map":
        flow = flow.map(lambda x: None if hit(x) else x * 2)
    else:
        flow = flow.scan(0, lambda acc, x: None if hit(x) else acc + x)
    return flow.with_attributes(Attributes.supervision_strategy(lambda _e: decider))


async def _outcome(
    graph: Any, fast_paths: bool
) -> tuple[list[Any], tuple[type[BaseException], str] | None]:
    seen: list[Any] = []
    async with Materializer(fast_paths=fast_paths, blocking_threshold=None) as mat:
        done = graph(seen.append).run(mat)
        try:
            await asyncio.wait_for(done, 10)
        except Exception as exc:  # the stream's failure, compared below
            return seen, (type(exc), str(exc))
    return seen, None


def _behind_boundaries(n: int, size: int, bad: int, how: str, directive: str, kind: str) -> Any:
    def graph(put: Any) -> Any:
        return (
            Source.from_iterable(range(n))
            .async_boundary()
            .via(_chain(bad, how, directive, kind))
            .async_boundary()
            .with_attributes(Attributes.input_buffer(size, size))
            .to_mat(Sink.foreach(put), Keep.right)
        )

    return graph


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 120),
    size=st.sampled_from([1, 2, 3, 5, 16]),
    bad=st.integers(-1, 120),
    how=st.sampled_from(["raise", "none"]),
    directive=st.sampled_from(sorted(DIRECTIVES)),
    kind=st.sampled_from(["map", "scan"]),
)
async def test_a_chain_behind_a_boundary_matches_the_plain_stages(
    n: int, size: int, bad: int, how: str, directive: str, kind: str
) -> None:
    graph = _behind_boundaries(n, size, bad, how, directive, kind)
    fast = await _outcome(graph, True)
    plain = await _outcome(graph, False)
    assert fast == plain
    if 0 <= bad < n and bad % 3 != 1 and directive == "stop":
        assert fast[1] is not None  # the failure reached the stream


async def test_a_raise_in_a_bounded_run_resumes_at_the_right_element() -> None:
    # A buffer of 16 behind a downstream asking for 2 at a time: the chain's runs are
    # bounded by the room; the raising element is dropped, nothing else.
    graph = _behind_boundaries(60, 2, 30, "raise", "resume", "map")
    seen, failure = await _outcome(graph, True)
    assert failure is None
    assert seen == [x * 2 for x in range(60) if x % 3 != 1 and x != 30]


def _failing_iterator(n: int, at: int) -> Iterator[int]:
    for i in range(n):
        if i == at:
            raise KeyError(f"source failed at {i}")
        yield i


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 80), at=st.integers(-1, 80), size=st.sampled_from([1, 4, 16]))
async def test_a_failing_source_iterator_in_a_fill_matches_the_plain_stages(
    n: int, at: int, size: int
) -> None:
    def graph(put: Any) -> Any:
        return (
            Source.from_iterable(_failing_iterator(n, at))
            .filter(lambda x: x % 3 != 1)
            .map(lambda x: x + 1)
            .async_boundary()
            .with_attributes(Attributes.input_buffer(size, size))
            .to_mat(Sink.foreach(put), Keep.right)
        )

    fast = await _outcome(graph, True)
    plain = await _outcome(graph, False)
    assert fast == plain
    if 0 <= at < n:
        assert fast[1] == (KeyError, repr(f"source failed at {at}"))

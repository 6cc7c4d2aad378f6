"""An iterable source of a range or tuple has its element count derived when it is read.

Its lazy takes (a fused chain iterating the source's own iterator) are not counted as
they settle: ``MeteredConnection.element_count`` reads the count off the iterator (what
it had at the first take, or a range's length, minus what it has left and the element
it looks ahead). Here every take is also counted element by element (the source's own
hand-over wrapped in a counting generator, below anything ``instrument`` wraps), and
the derived count must equal what the connection counted itself (its pushes on pulls)
plus those, read at any moment: from inside the chain's loop (a take open), from stages
behind boundaries (the source between takes), and at the end.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import Attributes, Keep, Materializer, Sink, Source
from reactive._ops.sources import _IterableLogic
from reactive.observe._metering import MeteredConnection

if TYPE_CHECKING:
    from collections.abc import Iterator

#: Elements handed over by takes, per connection, counted one by one.
_TAKEN: dict[int, int] = {}
#: Takes (hand-overs that gave elements), per connection.
_TAKES: dict[int, int] = {}
#: The source's connection (the one the takes are from), once known.
_SRC: list[MeteredConnection] = []
#: How many times the invariant was checked with a derived count (a take happened).
_CHECKS: list[int] = [0]

_HAND_OVER = _IterableLogic._hand_over_up_to


def _counting(it: Any, key: int) -> Iterator[Any]:
    for x in it:
        _TAKEN[key] = _TAKEN.get(key, 0) + 1
        yield x


def _counting_hand_over(self: _IterableLogic, n: int) -> Any:
    """The source's own hand-over, its elements counted one by one as they are taken
    (below whatever ``instrument`` wraps around it, if anything)."""
    m: Any = self._conns[self.out]
    if not any(c is m for c in _SRC):
        _SRC.append(m)
    out = _HAND_OVER(self, n)
    if out is None:
        return None
    _TAKES[id(m)] = _TAKES.get(id(m), 0) + 1
    return _counting(out, id(m))


def _check() -> None:
    for m in _SRC:
        want = m.elements + _TAKEN.get(id(m), 0)
        assert m.element_count() == want, (m.element_count(), want)
        # Each take counted once, by the fused chain that took it or by the wrapper
        # around the hand-over (another consumer, a map_async here).
        assert m.takes == _TAKES.get(id(m), 0), (m.takes, _TAKES)
        if m.derive is not None:
            _CHECKS[0] += 1


async def _identity(x: int) -> int:
    _check()
    return x


def _checked(x: int) -> int:
    _check()
    return x


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_IterableLogic, "_hand_over_up_to", _counting_hand_over)


async def _run(data: Any, ops: list[tuple[str, int, bool]], buffer: int, fast: bool) -> None:
    _TAKEN.clear()  # (per graph: connections' ids are reused)
    _TAKES.clear()
    _SRC.clear()
    flow: Any = Source.from_iterable(data).named("src")
    for i, (kind, k, cut) in enumerate(ops):
        if kind == "map":
            flow = flow.map(lambda x, k=k: x * k).named(f"s{i}")
        elif kind == "filter":
            flow = flow.filter(lambda x, k=k: x % k != 0).named(f"s{i}")
        elif kind == "async":  # a map_async takes from the source too (see async_.py)
            flow = flow.map_async(k, _identity).named(f"s{i}")
        else:
            flow = flow.map(_checked).named(f"s{i}")
        if cut:
            flow = flow.async_boundary()
    graph = (
        flow.to_mat(Sink.seq().named("sink"), Keep.right)
        .named("g")
        .add_attributes(Attributes.input_buffer(buffer, buffer))
    )
    async with Materializer(metrics=True, fast_paths=fast) as mat:
        got = await graph.run(mat)
        for _ in range(10):
            await asyncio.sleep(0)
        _check()
        src = next(s for s in mat.snapshot().graph("g").stages if s.id.startswith("src"))
        assert src.metrics is not None
        assert src.metrics.elements_out == len(data)
        # A take is a pull and a push of the port.
        port = src.outlets[0].metrics
        assert port is not None
        for m in _SRC:
            takes = _TAKES.get(id(m), 0)
            assert (port.pulls, port.pushes) == (m.pulls + takes, m.pushes + takes)
    want = list(data)
    for kind, k, _ in ops:
        if kind == "map":
            want = [x * k for x in want]
        elif kind == "filter":
            want = [x for x in want if x % k != 0]
    assert got == want


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["map", "filter", "check", "async"]), st.integers(2, 4), st.booleans()
    ),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(0, 80),
    kind=st.sampled_from(["range", "tuple"]),
    ops=_OPS,
    buffer=st.integers(1, 16),
    fast=st.booleans(),
    first_async=st.booleans(),
)
def test_derived_count_is_what_was_taken(
    counting: None,
    n: int,
    kind: str,
    ops: list[tuple[str, int, bool]],
    buffer: int,
    fast: bool,
    first_async: bool,
) -> None:
    data: Any = range(n) if kind == "range" else tuple(range(n))
    # A check right after the source (inside the take's loop) and one behind a boundary
    # (the source between takes) in every graph, besides the random ones.
    ops = [("check", 1, False), *ops, ("check", 1, True), ("check", 1, False)]
    if first_async:  # the source's consumer a map_async instead of a fused chain
        ops.insert(0, ("async", 3, False))
    asyncio.run(_run(data, ops, buffer, fast))


def test_the_derived_count_is_used_and_checked(counting: None) -> None:
    """The cases above do reach a derived count (a take from a range or tuple), and read
    it inside and between takes; a count off by the element looked ahead is caught."""
    _CHECKS[0] = 0
    for data in (range(100), tuple(range(100))):
        asyncio.run(_run(data, [("check", 1, False), ("check", 1, True)], 4, True))
        assert any(m.derive is not None for m in _SRC)
    assert _CHECKS[0] > 100

    orig = MeteredConnection.element_count

    def off_by_one(self: MeteredConnection) -> int:
        return orig(self) + (self.derive is not None)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(MeteredConnection, "element_count", off_by_one)
        with pytest.raises(AssertionError):
            asyncio.run(_run(range(50), [("check", 1, False)], 4, True))

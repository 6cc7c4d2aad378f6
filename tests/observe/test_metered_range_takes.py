"""A range source hands sub-ranges over with metrics on, as it does with metrics off.

``_IterableLogic._hand_over_up_to`` gives a consumer that takes lazily (a fused chain, a
``map_async``) a slice of its range, which the consumer's loop iterates at the range
iterator's own speed; while the take is open the source's ``it`` is the tuple of the
range's iterator, the take's and where the take ends. With metrics on the same tuple is
used (no wrapper object per take) and the element count is read off it
(``reactive.observe._metering.iterator_left``), for a fused chain and for a consumer whose
takes a wrapper counts (a ``map_async``). The counts must be those of the plain
element-at-a-time path: every element once, a take a pull and a push.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import Attributes, Keep, Materializer, Sink, Source
from reactive._ops.sources import _IterableLogic
from reactive.observe._metering import iterator_left

_SETTLE = _IterableLogic._hand_over_settle

#: The type of the source's ``it`` at each settled take.
_SEEN: list[type] = []


def _recording_settle(self: _IterableLogic, exc: BaseException | None) -> None:
    _SEEN.append(type(self.it))
    _SETTLE(self, exc)


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> None:
    _SEEN.clear()
    monkeypatch.setattr(_IterableLogic, "_hand_over_settle", _recording_settle)


async def _double(x: int) -> int:
    return x * 2


def _graph(n: int, consumer: str, metrics: bool) -> Any:
    src = Source.from_iterable(range(n)).named("src")
    flow = src.map(lambda x: x * 2) if consumer == "fused" else src.map_async(2, _double)
    graph = flow.filter(lambda x: x % 3 == 0).to_mat(Sink.seq(), Keep.right).named("g")
    if metrics:
        graph = graph.add_attributes(Attributes.metrics(True))
    return graph


async def _run(n: int, consumer: str, metrics: bool, fast: bool = True) -> tuple[Any, Any]:
    async with Materializer(metrics=metrics, fast_paths=fast) as mat:
        got = await _graph(n, consumer, metrics).run(mat)
        port: Any = None
        if metrics:
            src = next(s for s in mat.snapshot().graph("g").stages if s.id.startswith("src"))
            port = src.outlets[0].metrics
    return got, port


@pytest.mark.parametrize("consumer", ["fused", "map_async"])
def test_metered_range_source_hands_over_sub_ranges(recording: None, consumer: str) -> None:
    n = 1000
    want = [x * 2 for x in range(n) if (x * 2) % 3 == 0]
    got, _ = asyncio.run(_run(n, consumer, False))
    assert got == want
    plain = list(_SEEN)
    # (a take of one element leaves the range's iterator as it is)
    assert tuple in plain, plain
    _SEEN.clear()
    got, port = asyncio.run(_run(n, consumer, True))
    assert got == want
    # The same takes as without metrics: sub-ranges, settled as tuples.
    assert plain == _SEEN
    assert port is not None
    assert port.elements == n


@pytest.mark.parametrize("consumer", ["fused", "map_async"])
def test_metered_sub_range_counts_equal_the_plain_path(consumer: str) -> None:
    n = 777
    got, port = asyncio.run(_run(n, consumer, True))
    slow_got, slow = asyncio.run(_run(n, consumer, True, fast=False))
    assert got == slow_got
    assert port.elements == slow.elements == n
    # A take is one pull and one push: the fast path makes fewer of both, never more
    # pushes than pulls.
    assert 0 < port.pushes <= port.pulls <= slow.pulls


def test_iterator_left_inside_a_take() -> None:
    """While a take of a sub-range is open, what the source has left is as if the take's
    loop read the range's iterator itself (the first element, read ahead, taken)."""

    class _Logic:
        pass

    logic: Any = _Logic()
    logic.iterable = r = range(10)
    rit = iter(r)
    next(rit)  # 0 read ahead: the take starts there
    lazy = iter(r[0:4])
    logic.it = (rit, lazy, 4)
    assert iterator_left(logic) == 9  # nothing read: 0 counted as taken
    seen = [next(lazy), next(lazy)]
    assert seen == [0, 1]
    assert iterator_left(logic) == 8  # 0 and 1 taken
    list(lazy)
    assert iterator_left(logic) == 6  # the take's four
    logic.it = rit
    assert iterator_left(logic) == 9

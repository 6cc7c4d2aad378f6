"""Metered junction and worker-pool fast paths count what the element-at-a-time path counts.

With metrics on, Balance hands a worker its next element in one call, a ``map_async``
offers its result to Merge, Merge hands it straight down and re-pulls without an event,
Broadcast takes from an iterable source directly and Merge takes a boundary's batch: each
counts its pulls, pushes and elements on the connection (the time accounting is checked
against a reference in ``test_metering_reference.py``). Here: every connection's element
count equals the element-at-a-time path's (fast paths off) and the plain model's; where
the fast path moves one element per pull and push (the pool of ``map_async(1)``) the pulls
and pushes are equal too; and the fast paths are really taken with metrics on.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import (
    Balance,
    Broadcast,
    ClosedShape,
    Flow,
    GraphDSL,
    Materializer,
    Merge,
    RunnableGraph,
    Sink,
    Source,
)

if TYPE_CHECKING:
    import pytest

KINDS = ("pool", "pool3", "broadcast", "boundaries")
#: The fan-out junctions' stage names.
FANS = ("balance", "broadcast")


async def _work(x: int) -> int:
    """A worker's call: suspends ``x % 3`` times (calls finish out of step)."""
    for _ in range(x % 3):
        await asyncio.sleep(0)
    return x


def _graph(kind: str, n: int, sink: Any = None) -> Any:
    """An iterable source into Balance(2) and two ``map_async`` workers (parallelism 1,
    or 3 for "pool3"), or into Broadcast(2) and two maps (behind async boundaries for
    "boundaries"); Merge(2); into ``sink`` (default: summed). The graph is named "g"."""

    def blueprint(b: Any, sink: Any) -> Any:
        src = b.add(Source.from_iterable(range(n)).named("src"))
        fan = b.add(Balance(2) if kind.startswith("pool") else Broadcast(2))
        merge = b.add(Merge(2))
        src.out >> fan.in_
        for i in range(2):
            if kind.startswith("pool"):
                branch: Any = Flow().map_async(3 if kind == "pool3" else 1, _work)
            else:
                branch = Flow().map(lambda x, i=i: x * 10 + i)
                if kind == "boundaries":
                    branch = branch.async_boundary()
            fan.out(i) >> b.add(branch.named(f"b{i}")) >> merge.in_(i)
        merge.out >> sink.in_
        return ClosedShape

    if sink is None:
        sink = Sink.fold(0, lambda a, x: a + x).named("sink")
    return RunnableGraph.from_graph(GraphDSL.create(blueprint, sink)).named("g")


def _elements(kind: str, n: int) -> list[int]:
    """What ``_graph(kind, n)`` emits, sorted."""
    if kind.startswith("pool"):
        return list(range(n))
    return sorted(x * 10 + i for x in range(n) for i in range(2))


async def _run(kind: str, n: int, fast: bool) -> dict[tuple[str, str], Any]:
    """The sum, checked, and each connection's metrics by (upstream, downstream)."""
    async with Materializer(fast_paths=fast, metrics=True, name=f"junctions-{fast}") as mat:
        total: int = await _graph(kind, n).run(mat)
        await asyncio.sleep(0)
        conns = [c for isl in mat.snapshot().graph("g").islands for c in isl.connections]
    assert total == sum(_elements(kind, n))
    return {(c.upstream, c.downstream): c.metrics for c in conns}


def _model_elements(kind: str, n: int, key: tuple[str, str]) -> int | None:
    """What the plain model says crosses the connection ``key`` (None: a boundary's
    inner connections, which the model does not name)."""
    up, down = key
    if up == "src" or down == "sink":
        return n if up == "src" else n * (1 if kind.startswith("pool") else 2)
    if kind.startswith("pool"):
        return None  # Balance splits by demand: only the two branches' sum is fixed
    if up in FANS or down == "merge":
        return n
    return None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(KINDS), n=st.integers(0, 60))
def test_metered_junction_fast_paths_count_as_the_element_at_a_time_path(kind: str, n: int) -> None:
    fast = asyncio.run(_run(kind, n, True))
    slow = asyncio.run(_run(kind, n, False))
    for key, m in fast.items():
        want = _model_elements(kind, n, key)
        if want is not None:
            assert m.elements == want, (key, m)
        if key in slow and not kind.startswith("pool"):
            assert m.elements == slow[key].elements, (key, m, slow[key])
    if kind.startswith("pool"):
        # Balance splits by demand, differently on each path; the workers' inputs and
        # outputs carry n elements between them either way.
        into = sum(m.elements for (up, _), m in fast.items() if up in FANS)
        out = sum(m.elements for (_, down), m in fast.items() if down == "merge")
        assert into == out == n, fast
    if kind == "pool":
        # One element per pull and push on every connection, on both paths.
        for key, m in fast.items():
            assert m.pushes == m.elements, (key, m)
            assert m.pulls in (m.elements, m.elements + 1), (key, m)


async def test_the_worker_pool_keeps_its_fast_paths_with_metrics_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With metrics on, the workers take their elements from Balance in one call and
    Merge hands their results straight down (not a queued push and pull each)."""
    from reactive._ops.fan_in import merges
    from reactive._ops.fan_out import balance

    calls = {"hand_over_one": 0, "hand_down": 0}
    hand_over_one = balance._BalanceBatchLogic._hand_over_one_i
    hand_down = merges._MergeBatchLogic._hand_down

    def counting_hand_over_one(self: Any, i: int) -> Any:
        calls["hand_over_one"] += 1
        return hand_over_one(self, i)

    def counting_hand_down(self: Any, *args: Any) -> None:
        calls["hand_down"] += 1
        hand_down(self, *args)

    monkeypatch.setattr(balance._BalanceBatchLogic, "_hand_over_one_i", counting_hand_over_one)
    monkeypatch.setattr(merges._MergeBatchLogic, "_hand_down", counting_hand_down)
    metrics = await _run("pool", 2000, True)
    assert metrics[("src", "balance")].elements == 2000
    assert calls["hand_over_one"] > 2000 * 9 // 10, calls
    assert calls["hand_down"] > 2000 * 9 // 10, calls

"""``StageMetrics.failed`` (``reactive_stage_failed``) marks the stage a failure came from.

A failure travels: downstream as an upstream failure, upstream as a cancellation with the
failure as cause. Every stage it reaches stops by failing, but only the stage whose own
handler or function raised (or that called ``fail_stage`` with an error of its own) is
the one to look at: before, the source and the sink of ``source -> map(raises) -> sink``
were marked failed too, so the export said three stages failed.
"""

from __future__ import annotations

import asyncio

import pytest

from reactive import Flow, Keep, Materializer, Sink, Source
from reactive.observe._snapshot import export_view


def _bad(x: int) -> int:
    if x == 50:
        raise ValueError("boom")
    return x


async def _abad(x: int) -> int:
    return _bad(x)


CASES = {
    "map": lambda s: s.via(Flow[int]().map(_bad).named("op")),
    "map+filter": lambda s: s.via(Flow[int]().map(_bad).filter(lambda x: True).named("op")),
    "map_async": lambda s: s.via(Flow[int]().map_async(2, _abad).named("op")),
}


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("boundary", [False, True])
@pytest.mark.parametrize("kind", sorted(CASES))
async def test_only_the_origin_is_failed(kind: str, fast: bool, boundary: bool) -> None:
    async with Materializer(metrics=True, fast_paths=fast) as mat:
        s = Source.from_iterable(range(100)).named("src")
        if boundary:
            s = s.async_boundary()
        with pytest.raises(ValueError, match="boom"):
            await CASES[kind](s).to_mat(Sink.ignore().named("sink"), Keep.right).named("g").run(mat)
        await asyncio.sleep(0)
        snap = mat.snapshot()
        g = snap.graph("g")
        assert g.finished
        failed = sorted(s.id for s in g.stages if s.metrics is not None and s.metrics.failed)
        assert len(failed) == 1 and failed[0].startswith("op"), failed
        exported = {k[1] for k, v in export_view(snap).stages.items() if v.failed}
        assert exported == set(failed)
        # The stages the failure reached stopped all the same.
        assert all(s.stopped for s in g.stages)


async def test_a_failure_of_its_own_after_receiving_one_is_failed() -> None:
    """``first`` fails with ValueError, ``recover`` turns it into a 0 and completes, and
    ``div`` fails with a ZeroDivisionError of its own: two origins, two failed stages; the
    source, ``recover`` and the sink are not."""

    async with Materializer(metrics=True) as mat:
        got = (
            Source.from_iterable([1, 2, 50, 3])
            .named("src")
            .map(_bad)
            .named("first")
            .recover(lambda exc: 0)
            .named("rec")
            .map(lambda x: 1 // x)
            .named("div")
            .to_mat(Sink.seq(), Keep.right)
            .named("g")
            .run(mat)
        )
        with pytest.raises(ZeroDivisionError):
            await got
        g = mat.snapshot().graph("g")
        failed = sorted(s.name for s in g.stages if s.metrics is not None and s.metrics.failed)
        assert failed == ["div", "first"]

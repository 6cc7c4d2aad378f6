"""A supervision decider's own bug stops the stage, never hangs it, and says so.

Found by an exploratory review: a decider that raised (``DECISIONS[type(exc)]`` for a type
it does not list) hung ``map_async``, ``map_async_unordered``, ``foreach_async``,
``scan_async`` and ``fold_async`` (the exception escaped an async callback into the event
loop, and the materialized value never completed); a decider that returned something other
than a ``Supervision`` directive (``"resume"``, ``None``) was taken as stop without a word.
Now both stop the stage with the element's exception, noted with what the decider did, on
every operator and on both paths. Also: ``KillSwitch.abort`` refuses a non-exception.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import Attributes, Keep, KillSwitches, Materializer, Sink, Source, Supervision

DECISIONS = {ValueError: Supervision.resume}


def _raising_decider(exc: BaseException) -> Supervision:
    return DECISIONS[type(exc)]  # KeyError for a TypeError


class Boom(TypeError):
    pass


def _fail_on_3(x: int) -> int:
    if x == 3:
        raise Boom("unexpected 3")
    return x


async def _afail_on_3(x: int) -> int:
    await asyncio.sleep(0)
    return _fail_on_3(x)


async def _afold(acc: int, x: int) -> int:
    await asyncio.sleep(0)
    return acc + _fail_on_3(x)


def _flow(op: Any) -> Any:
    """``src -> op -> Sink.seq()`` with the decider on the operator."""
    return lambda src, sup: op(src).with_attributes(sup).to_mat(Sink.seq(), Keep.right)


def _sink(sink: Any) -> Any:
    """``src -> sink`` with the decider on the sink."""
    return lambda src, sup: src.to_mat(sink.with_attributes(sup), Keep.right)


OPERATORS: dict[str, Any] = {
    "map": _flow(lambda s: s.map(_fail_on_3)),
    "filter": _flow(lambda s: s.filter(lambda x: _fail_on_3(x) >= 0)),
    "map_async": _flow(lambda s: s.map_async(2, _afail_on_3)),
    "map_async_unordered": _flow(lambda s: s.map_async_unordered(2, _afail_on_3)),
    "scan_async": _flow(lambda s: s.scan_async(0, _afold)),
    "fold_async": _flow(lambda s: s.fold_async(0, _afold)),
    "stateful_map": _flow(lambda s: s.stateful_map(lambda: 0, lambda st, x: (st, _fail_on_3(x)))),
    "foreach_async": _sink(Sink.foreach_async(2, _afail_on_3)),
    "foreach": _sink(Sink.foreach(_fail_on_3)),
}


async def _run(name: str, decider: Any, fast: bool) -> BaseException:
    sup = Attributes.supervision_strategy(decider)
    async with Materializer(fast_paths=fast) as mat:
        graph = OPERATORS[name](Source.from_iterable(range(6)), sup)
        with pytest.raises(Boom) as info:
            await asyncio.wait_for(graph.run(mat), 5)
        return info.value


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("name", sorted(OPERATORS))
async def test_a_raising_decider_stops_the_stage_with_the_elements_exception(
    name: str, fast: bool
) -> None:
    exc = await _run(name, _raising_decider, fast)
    notes = getattr(exc, "__notes__", [])
    assert any(n.startswith("the supervision decider raised KeyError(") for n in notes), notes


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("returned", ["resume", None, 1])
async def test_a_decider_returning_no_directive_stops_and_says_so(
    fast: bool, returned: Any
) -> None:
    exc = await _run("map", lambda e: returned, fast)
    assert (
        f"the supervision decider returned {returned!r}, not a Supervision directive "
        "(stop, resume or restart); the stage stopped"
    ) in exc.__notes__


@pytest.mark.parametrize("fast", [True, False])
async def test_a_deciders_own_bug_on_a_fused_chain_names_it(fast: bool) -> None:
    """Fused with a filter after it, the map's decider is still the one applied."""
    async with Materializer(fast_paths=fast) as mat:
        with pytest.raises(Boom) as info:
            await (
                Source.from_iterable(range(6))
                .map(_fail_on_3)
                .filter(lambda x: True)
                .with_attributes(Attributes.supervision_strategy(_raising_decider))
                .run_with(Sink.seq(), mat)
            )
    assert any("supervision decider raised KeyError" in n for n in info.value.__notes__)


async def test_abort_refuses_a_non_exception_and_fires_nothing() -> None:
    switch, done = (
        Source.never()
        .via_mat(KillSwitches.single(), Keep.right)
        .to_mat(Sink.ignore(), Keep.both)
        .run()
    )
    with pytest.raises(TypeError, match=r"abort\(exc\): exc must be an exception, got str"):
        switch.abort("shutting down")  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    assert not done.done()
    switch.abort(RuntimeError("now"))
    with pytest.raises(RuntimeError, match="now"):
        await done


async def test_shared_abort_refuses_a_non_exception() -> None:
    shared = KillSwitches.shared("s")
    with pytest.raises(TypeError, match=r"KillSwitch\(s\)\.abort\(exc\)"):
        shared.abort(ValueError)  # type: ignore[arg-type]

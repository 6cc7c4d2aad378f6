"""The async boundary's flush hooks (issue 19, the hop's per-cycle cost).

A boundary's upstream half schedules its flush hook when its hand-over list fills from
empty (no separate flag): one hook per burst, whatever the number of batches or single
elements it collects in that burst, and a new one after each hand-over. The outermost
run drains the cascade's deferred flush hooks one after the other while nothing of its
own island comes back; a mailbox entry, a queued event or a flush hook of its own that
a hook leaves runs before the next deferred hook, as one hook per loop step did.
"""

from __future__ import annotations

from typing import Any

import pytest

from reactive import Flow, Materializer, Sink, Source
from reactive._impl.boundary import _BoundaryIn
from reactive._impl.interpreter import Island
from tests.reactive.support import OneByOne


class _Entry:
    """The logic a mailbox entry is delivered for (only ``_stopped`` is read)."""

    _stopped = False


class _Queued:
    """A queued connection the loop drops (a pull on a closed connection: ``PULL_REQ``
    with ``OUT_CLOSED``), recording that the loop reached it."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.elem: Any = None

    @property
    def state(self) -> int:
        self.log.append("event")
        return 1 | 32

    @state.setter
    def state(self, value: int) -> None:
        pass


async def test_deferred_hooks_yield_to_what_they_leave_behind() -> None:
    mat = Materializer(name="hop-hooks")
    async with mat:
        island = Island(mat, "hooks")
        sched = island.sched
        assert not sched.deferred and sched.executing == 0
        log: list[str] = []

        def hook(name: str, then: Any = None) -> Any:
            def run() -> None:
                log.append(name)
                if then is not None:
                    then()

            return run

        def leave_entry() -> None:
            island.mailbox.append((_Entry(), lambda arg: log.append(f"entry {arg}"), 1))

        def leave_event() -> None:
            island.queue.append(_Queued(log))

        def leave_own_hook() -> None:
            island.flush_hooks.append(hook("own"))

        sched.deferred.extend(
            [
                hook("d1", leave_entry),
                hook("d2"),
                hook("d3", leave_own_hook),
                hook("d4", leave_event),
                hook("d5"),
            ]
        )
        more = island.execute()
        assert not more and not sched.deferred
        assert log == ["d1", "entry 1", "d2", "d3", "own", "d4", "event", "d5"]


@pytest.mark.parametrize("size", [1, 4, 16])
async def test_one_flush_per_burst_and_a_new_one_after_each_hand_over(
    monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    # Single elements (an element-at-a-time stage upstream: one push per element) are
    # collected into one hand-over per burst: a full window each (``size`` elements),
    # so about n / size flushes, every one with elements but the last (the one at the
    # upstream's completion). A hook scheduled per element would flush about n times;
    # one not scheduled again after a hand-over would stall the stream.
    flushes = [0, 0]  # with elements, without
    plain = _BoundaryIn.flush

    def counted(self: _BoundaryIn) -> None:
        flushes[0 if self.pending else 1] += 1
        plain(self)

    monkeypatch.setattr(_BoundaryIn, "flush", counted)
    n = 640
    mat = Materializer(name="hop-bursts", input_buffer=size)
    async with mat:
        got = await (
            Source.from_iterable(range(n))
            .via(Flow.from_graph(OneByOne()))
            .async_boundary()
            .map(lambda x: x * 3)
            .run_with(Sink.seq(), mat)
        )
    assert got == [x * 3 for x in range(n)]
    assert n // size <= flushes[0] <= n // size + 2, flushes
    assert flushes[1] <= 2, flushes


async def test_deferred_hooks_stay_in_order_across_boundaries() -> None:
    # Four boundaries in a row, the outermost run drains each island's hand-over from
    # the deferred hooks: the elements arrive complete and in order, fast paths on and off.
    n = 2000
    for fast in (True, False):
        mat = Materializer(name=f"hop-chain-{fast}", fast_paths=fast)
        async with mat:
            src: Any = Source.from_iterable(range(n))
            for k in range(4):
                src = src.map(lambda x, k=k: x + k).async_boundary()
            got = await src.run_with(Sink.seq(), mat)
        assert got == [x + 6 for x in range(n)]

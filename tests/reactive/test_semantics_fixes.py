"""Semantics aligned with Akka/Pekko (issue 12, item 10), derived from their sources.

- ``Merge(eager_complete=True)`` (Pekko ``scaladsl/Graph.scala``, ``Merge``): when an
  input completes, every input is cancelled (``cancel`` discards an element waiting on
  another input: ``isAvailable`` is false for a ``Cancelled`` slot) and
  ``runningUpstreams = 0``; the stage completes only ``if (!pending)``, so the element
  the completed input had already delivered is emitted first (``dequeueAndDispatch``
  skips inputs "closed after being enqueued"). Pekko's FlowMergeSpec "not try to grab
  from a closed input previously enqueued". ``MergePrioritized`` follows the same code
  (``hasPending``), and so does ``MergePreferred`` here.
- ``Source.queue`` (Pekko ``impl/QueueSource.scala``): ``Completion`` with buffered
  elements (or waiting offers) sets ``terminating``; an offer while terminating answers
  ``QueueOfferResult.Dropped``. Once the stage completed, ours answers ``queue_closed``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from reactive import (
    ClosedShape,
    GraphDSL,
    Keep,
    Materializer,
    MergePreferred,
    MergePrioritized,
    OverflowStrategy,
    QueueOfferResult,
    RunnableGraph,
    Source,
)
from reactive.testkit import TestSink, TestSource

E, D, C = QueueOfferResult.enqueued, QueueOfferResult.dropped, QueueOfferResult.queue_closed


async def settle(rounds: int = 30) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


def junction_with_probes(junction: Any, n: int) -> RunnableGraph[Any]:
    """``n`` TestSource probes into ``junction``'s inlets (in order), out to a TestSink."""

    def bp(b: Any, *shapes: Any) -> Any:
        *srcs, snk = shapes
        j = b.add(junction)
        for i, s in enumerate(srcs):
            s.out >> j.inlets[i]
        j.outlets[0] >> snk.in_
        return ClosedShape

    return RunnableGraph.from_graph(
        GraphDSL.create(bp, *(TestSource.probe() for _ in range(n)), TestSink.probe())
    )


# -- Merge(eager_complete=True) ---------------------------------------------------------------
def eager_merge_probes(materializer: Materializer) -> tuple[Any, Any, Any]:
    """Two publisher probes into ``merge(eager_complete=True)`` into a subscriber probe:
    ``(up1, up2, down)``."""
    (up1, up2), down = (
        TestSource.probe()
        .merge_mat(TestSource.probe(), Keep.both, eager_complete=True)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    return up1, up2, down


async def completed_inputs_pending_element_is_emitted(up1: Any, up2: Any, down: Any) -> None:
    """An eagerly completing merge: 7 and 8 wait (no demand), the input of 8 completes:
    8 is emitted, then the stage completes; the other input is cancelled and its 7
    discarded with it."""
    await up1.expect_request()
    await up2.expect_request()
    up1.send_next(7)
    up2.send_next(8)
    await settle()
    up2.send_complete()
    await up1.expect_cancellation()
    down.request(1)
    await down.expect_next(8)
    await down.expect_complete()


async def test_eager_merge_emits_the_completed_inputs_pending_element(
    materializer: Materializer,
) -> None:
    """FlowMergeSpec 'not try to grab from a closed input previously enqueued': 7 and 8
    wait (no demand), the input of 8 completes: 8 is emitted, then the stage completes;
    the other input is cancelled and its 7 discarded with it."""
    up1, up2, down = eager_merge_probes(materializer)
    await completed_inputs_pending_element_is_emitted(up1, up2, down)


async def test_eager_merge_emits_a_lone_pending_element_before_completing(
    materializer: Materializer,
) -> None:
    up1, up2, down = eager_merge_probes(materializer)
    up1.send_next("a").send_complete()
    await up2.expect_cancellation()
    await down.expect_no_message(0.01)  # no demand: the element waits, no completion yet
    down.request(5)
    await down.expect_next("a")
    await down.expect_complete()


async def test_eager_merge_without_pending_element_completes_at_once(
    materializer: Materializer,
) -> None:
    up1, up2, down = eager_merge_probes(materializer)
    up2.send_next(1)  # waits on the input that stays open: discarded by the cancellation
    await settle()
    up1.send_complete()
    await down.expect_complete()
    await up2.expect_cancellation()


async def test_eager_merge_prioritized_emits_the_completed_inputs_pending_element(
    materializer: Materializer,
) -> None:
    (up1, up2, down) = junction_with_probes(MergePrioritized([1, 1], eager_complete=True), 2).run(
        materializer
    )
    await completed_inputs_pending_element_is_emitted(up1, up2, down)


async def test_eager_merge_preferred_emits_the_completed_inputs_pending_element(
    materializer: Materializer,
) -> None:
    # inlets: in0 (secondary), then the preferred one
    (sec, pref, down) = junction_with_probes(MergePreferred(1, eager_complete=True), 2).run(
        materializer
    )
    await sec.expect_request()
    sec.send_next("s").send_complete()
    await pref.expect_cancellation()
    down.request(3)
    await down.expect_next("s")
    await down.expect_complete()


async def test_eager_merge_preferred_emits_grabbed_preferred_elements(
    materializer: Materializer,
) -> None:
    (sec, pref, down) = junction_with_probes(MergePreferred(1, eager_complete=True), 2).run(
        materializer
    )
    await pref.expect_request()
    pref.send_next("p")  # grabbed at once (as Pekko's emit), so it is not discarded
    await settle()
    sec.send_complete()
    await pref.expect_cancellation()
    down.request(3)
    await down.expect_next("p")
    await down.expect_complete()


# -- Source.queue: offer after complete() --------------------------------------------------
async def test_offer_after_complete_while_draining_is_dropped(materializer: Materializer) -> None:
    q, down = Source.queue(4).to_mat(TestSink.probe(), Keep.both).run(materializer)
    assert await q.offer(1) is E
    assert await q.offer(2) is E
    q.complete()
    assert await q.offer(3) is D  # Akka: terminating -> QueueOfferResult.Dropped
    down.request(5)
    await down.expect_next(1, 2)
    await down.expect_complete()
    assert await q.offer(4) is C  # the stream completed


async def test_offer_after_complete_with_waiting_offer_is_dropped(
    materializer: Materializer,
) -> None:
    """Zero buffer, one offer waiting for demand (Akka's ``pendingOffers.nonEmpty``)."""
    q, down = (
        Source.queue(0, OverflowStrategy.backpressure)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    waiting = asyncio.ensure_future(q.offer("a"))
    await settle()
    q.complete()
    assert await q.offer("b") is D
    down.request(2)
    await down.expect_next("a")
    await down.expect_complete()
    assert await waiting is E


async def test_offer_after_complete_with_empty_buffer_is_closed(
    materializer: Materializer,
) -> None:
    q, down = Source.queue(4).to_mat(TestSink.probe(), Keep.both).run(materializer)
    await settle()
    q.complete()
    await down.expect_complete()
    assert await q.offer(1) is C

"""Defects found by a review of the fast paths and Akka features of the last sessions,
each test failing before its fix: a split_when/split_after (drain) whose substream was
cancelled after upstream ended never completed (Pekko's Split cancels the stage then),
and a fused chain decided an exception instance raised a second time by the operator of
its first raise (its older traceback entries). The expected behaviour is Akka's/Pekko's,
or the plain path's (fast paths off) where a fast path must be invisible."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    Attributes,
    Materializer,
    Sink,
    Source,
    SubscriptionTimeoutError,
    SubstreamCancelStrategy,
    Supervision,
)
from reactive.testkit import TestSink
from tests.reactive.support import probes

if TYPE_CHECKING:
    from reactive.testkit import ManualClock, PublisherProbe, SubscriberProbe


def _via_split(materializer: Materializer, after: bool) -> tuple[PublisherProbe, SubscriberProbe]:
    """``split_when`` / ``split_after`` (never splitting, the default ``drain``), the
    stage alone between probes: a stream of one Source per substream."""
    from reactive import Flow
    from reactive._ops.nesting import Split

    def never(x: int) -> bool:
        return False

    flow = Flow.from_graph(Split(never, after, SubstreamCancelStrategy.drain))
    return probes(lambda s: s.via(flow), materializer)


# Defect (4c7ef8c, SubstreamCancelStrategy.drain; reactive/_ops/nesting.py,
# _SplitLogic._sub_cancel): upstream completed while the first substream still holds its
# first element (not pulled yet); that substream is then cancelled. Pekko's Split:
# ``if (isClosed(in) || propagateSubstreamCancel) cancelStage(cause)``: the stage
# completes. Here it sets ``draining`` and keeps ``current``, so ``_check_done`` never
# completes: the main output hangs forever (a ``merge_substreams`` never ends).
@pytest.mark.parametrize("after", [False, True])
async def test_split_drain_completes_when_the_substream_is_cancelled_after_upstream_ended(
    materializer: Materializer, after: bool
) -> None:
    pub, subs = _via_split(materializer, after)
    subs.request(1)
    pub.send_next(1)
    pub.send_complete()
    s1 = (await subs.expect_next(timeout=1.0)).run_with(TestSink.probe(), materializer)
    await s1.ensure_subscription(timeout=1.0)
    s1.cancel()
    await subs.expect_complete(timeout=1.0)


# Same defect through the DSL: substreams that take nothing (``take(0)`` cancels before
# pulling). The last substream opens with the stream's last element (split_when at 3 of
# [1, 2, 3]), or the stream is one element long: upstream has completed when that
# substream cancels. Expected: [] (the stream completes); got: it never completes.
@pytest.mark.parametrize(
    ("op", "data", "p"),
    [
        ("split_when", [1, 2, 3], 3),
        ("split_when", [1], None),
        ("split_after", [1], None),
    ],
)
async def test_split_whose_last_substream_takes_nothing_completes(
    materializer: Materializer, op: str, data: list[int], p: int | None
) -> None:
    import asyncio

    sub = getattr(Source.from_iterable(data), op)(lambda x: x == p)
    out = await asyncio.wait_for(
        sub.take(0).concat_substreams().run_with(Sink.seq(), materializer), 1.0
    )
    assert out == []


# Same root, default strategy (drain), the subscription timeout: upstream completed, the
# emitted substream Source is never materialized. At the timeout Pekko's Split cancels
# the substream (onDownstreamFinish with the SubscriptionTimeoutException) and, ``in``
# being closed, cancelStage(cause): the main output fails with the timeout (Pekko's
# default CancellationStrategy, PropagateFailure). Here the main output never ends.
async def test_split_drain_subscription_timeout_after_upstream_ended_ends_the_stream(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, subs = _via_split(materializer, False)
    subs.request(1)
    pub.send_next(1)
    pub.send_complete()
    late = await subs.expect_next(timeout=1.0)
    await manual_clock.advance(5.1)
    assert isinstance(await subs.expect_error(timeout=1.0), SubscriptionTimeoutError)
    with pytest.raises(SubscriptionTimeoutError):
        await late.run_with(Sink.seq(), materializer)


# Defect (fused chain, reactive/_impl/fused.py, _FusedLogic._raising_op; reached by every
# run of 7b99bad's _fill and 260ade5's on_push): the operator whose function raised is the
# *innermost* frame of the generated code on the traceback. An exception instance raised
# twice (a shared, pre-built error) keeps its old traceback entries under the new ones,
# so the filter's raise is taken for the map's earlier one and decided by the map's
# decider (resume): the stream goes on. The operators' own stages (fast paths off) fail
# with it, as Akka's would (the filter's supervision is stop). The outermost generated
# frame (the first match walking from the head) is the raising operator.
async def test_a_shared_exception_instance_is_decided_by_the_operator_that_raised_it() -> None:
    shared = ValueError("shared")

    def f1(x: int) -> int:
        if x == 2:
            raise shared
        return x

    def f2(x: int) -> bool:
        if x == 5:
            raise shared
        return True

    resume = Attributes.supervision_strategy(lambda exc: Supervision.resume)
    outcomes = []
    for fast in (False, True):
        async with Materializer(fast_paths=fast) as mat:
            stream = Source.from_iterable([1, 2, 3, 4, 5, 6]).map(f1).with_attributes(resume)
            try:
                got: Any = await stream.filter(f2).run_with(Sink.seq(), mat)
            except ValueError as exc:
                got = ("failed", str(exc))
        outcomes.append(got)
    assert outcomes == [("failed", "shared"), ("failed", "shared")]

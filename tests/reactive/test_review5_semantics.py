"""Review 5 (operator semantics against Pekko's stage code, where Akka lacks the
operator). Tests marked DEFECT failed before the fix named in their docstring."""

from __future__ import annotations

from reactive import Flow, Materializer, Source

from .support import flow_probes, seq


async def test_drop_repeated_compares_with_the_previous_element_even_if_dropped(
    materializer: Materializer,
) -> None:
    """DEFECT: Pekko's DropRepeated keeps ``last = elem`` after every comparison (its doc:
    "distinct from the previous element"), so with an ``eq`` that is not transitive a
    slowly drifting run stays one run. The port compared with the last element emitted
    (``1, 2, 3, 4, 10`` gave ``[1, 3, 10]``). Fix: ``_ops/simple.py``
    ``_DropRepeatedLogic.on_push``."""
    near = Source.from_iterable([1, 2, 3, 4, 10, 11, 5])
    got = await seq(near.drop_repeated(lambda p, x: abs(p - x) <= 1), materializer)
    assert got == [1, 10, 5]


async def test_drop_repeated_with_equality_is_unchanged(materializer: Materializer) -> None:
    """With ``==`` (an equivalence) both readings agree; demand: a dropped element pulls
    again, nothing is pushed without demand."""
    pub, sub = flow_probes(Flow().drop_repeated(), materializer)
    sub.request(1)
    await pub.expect_request()
    for x in (7, 7, 7):
        pub.send_next(x)
    await sub.expect_next(7)
    await sub.expect_no_message(0.05)
    sub.request(1)
    pub.send_next(8)
    await sub.expect_next(8)
    pub.send_complete()
    await sub.expect_complete()

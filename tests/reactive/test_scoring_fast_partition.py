"""``Partition``'s fused single-element pull (``_PartitionOut.on_pull``): the element
waiting alone for the output that pulls is pushed, and the next ones are taken from the
iterable source and routed in the same handler.

A grid of small scenarios is played with fast paths on and off and compared with the
Python reference of ``tests/reactive/test_fan_out_batches.py`` after every step (the
machinery of ``tests/reactive/test_partition_single_path.py``). The scripts keep one
output pulled ahead (the scoring shape) so that elements wait for the other output, and
put what can happen to a take on that path at each position in turn: the iterator
raising, a ``None`` element, the partition function raising (stop or resume) or
returning an index out of bounds, the source ending right after an element that goes
out at once, and an output cancelled while others wait.
"""

from __future__ import annotations

import pytest

from reactive.stage import PortStateError
from tests.reactive.test_fan_out_batches import check_partition_scenario, partition_where
from tests.reactive.test_junction_batches import Injected
from tests.reactive.test_partition_single_path import Items, graph_of

#: Data (0) and models (1) as the scoring stream has them, with runs of each.
XS = [1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 0]

#: Request scripts (output, amount; amount 0 cancels): one output pulled far ahead, the
#: other one element at a time; both one at a time in turn; a cancellation in between.
SCRIPTS = [
    [(1, 40), (0, 1), (0, 1), (0, 1), (0, 2), (0, 1), (0, 3)],
    [(0, 40), (1, 1), (1, 1), (1, 2), (1, 1)],
    [(0, 1), (1, 1), (0, 1), (1, 1), (0, 1), (1, 1), (0, 1)],
    [(1, 40), (0, 1), (0, 1), (1, 0), (0, 1), (0, 2)],
    [(1, 3), (0, 1), (0, 0), (1, 5)],
]

FAILS: list[tuple[str, int] | None] = [None]
FAILS += [("raise", k) for k in range(1, len(XS))]
FAILS += [("none", k) for k in range(1, len(XS))]


async def run(
    xs: list[int],
    fail: tuple[str, int] | None,
    bad: tuple[int, str] | None,
    resume: bool,
    steps: list[tuple[int, int]],
    boundary: str | None = None,
    n: int = 2,
) -> None:
    fail_at = fail[1] if fail is not None and fail[0] == "raise" else None
    none_at = fail[1] if fail is not None and fail[0] == "none" else None
    cut = fail[1] if fail is not None else None
    stream = xs if cut is None else xs[:cut]
    upstream_fails = cut is not None and cut < len(xs)
    await check_partition_scenario(
        stream,
        n,
        partition_where(n, 1, bad),
        resume,
        steps,
        exact=boundary != "out" and not upstream_fails,
        upstream_fails=upstream_fails,
        upstream_error=Injected if fail_at is not None else PortStateError,
        graph_of=lambda part: graph_of(part, Items(xs, fail_at, none_at), n, boundary),
    )


@pytest.mark.parametrize("boundary", [None, "up", "out"])
@pytest.mark.parametrize("steps", SCRIPTS)
@pytest.mark.parametrize("fail", FAILS)
async def test_a_take_on_the_fused_pull_fails_or_ends_as_the_reference(
    fail: tuple[str, int] | None, steps: list[tuple[int, int]], boundary: str | None
) -> None:
    await run(XS, fail, None, False, steps, boundary)


@pytest.mark.parametrize("steps", SCRIPTS)
@pytest.mark.parametrize("n", [1, 3])
async def test_one_or_three_outputs_as_the_reference(n: int, steps: list[tuple[int, int]]) -> None:
    # Output numbers wrap (``o % n``): with three outputs, two may be pulled in one step.
    await run([x + i % 2 for i, x in enumerate(XS)], None, None, False, steps, None, n)


@pytest.mark.parametrize("steps", SCRIPTS[:3])
@pytest.mark.parametrize("resume", [False, True])
@pytest.mark.parametrize("kind", ["raise", "index"])
@pytest.mark.parametrize("at", range(len(XS)))
async def test_the_function_failing_on_a_taken_element_is_as_the_reference(
    at: int, kind: str, resume: bool, steps: list[tuple[int, int]]
) -> None:
    # Elements are distinct so that ``bad`` names one: ``x % 2`` is still its route.
    xs = [2 * i + r for i, r in enumerate(XS)]
    await run(xs, None, (xs[at], kind), resume, steps)


@pytest.mark.parametrize("steps", SCRIPTS)
@pytest.mark.parametrize("length", range(1, 6))
async def test_the_source_ending_on_the_fused_pull_completes_as_the_reference(
    length: int, steps: list[tuple[int, int]]
) -> None:
    await run(XS[:length], None, None, False, steps)

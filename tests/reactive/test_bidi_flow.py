"""BidiFlow (Akka's BidiFlowSpec): codec stacks with ``atop``, closing with ``join`` at
the bottom and at the top, ``reversed``, materialized values, the two directions terminating
independently, a bidi inside GraphDSL, argument errors, and the typing users rely on."""

from __future__ import annotations

import asyncio
import struct
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

from reactive import (
    BidiFlow,
    ClosedShape,
    Flow,
    GraphDSL,
    IllegalGraphError,
    Keep,
    Materializer,
    NotUsed,
    OverflowStrategy,
    RunnableGraph,
    Sink,
    Source,
)
from reactive.stage import BidiShape
from reactive.testkit import TestSink, TestSource

ROOT = Path(__file__).resolve().parents[2]


class Boom(Exception):
    """A test failure."""


def codec() -> BidiFlow[str, bytes, bytes, str, Any]:
    """str <-> utf-8 bytes."""
    return BidiFlow.from_functions(lambda s: s.encode(), lambda b: b.decode())


def framing() -> BidiFlow[bytes, bytes, bytes, bytes, Any]:
    """A 2-byte length prefix on the way down, stripped (and checked) on the way up."""

    def unframe(b: bytes) -> bytes:
        (n,) = struct.unpack(">H", b[:2])
        assert n == len(b) - 2, b
        return b[2:]

    return BidiFlow.from_functions(lambda b: struct.pack(">H", len(b)) + b, unframe)


# -- composition ----------------------------------------------------------------------------
async def test_codec_stack_round_trip_through_an_echo_flow(materializer: Materializer) -> None:
    wire: list[bytes] = []
    echo = Flow[bytes]().map(lambda b: (wire.append(b), b)[1])
    stack = codec().atop(framing())
    flow = stack.join(echo)
    words = ["hello", "", "wörld"]
    assert await Source.from_iterable(words).via(flow).run_with(Sink.seq(), materializer) == words
    # what crossed the "wire" went through both layers, top (codec) first
    assert wire == [b"\x00\x05hello", b"\x00\x00", b"\x00\x06w\xc3\xb6rld"]
    # the blueprint is reusable: a second run is independent
    assert await Source.single("again").via(flow).run_with(Sink.seq(), materializer) == ["again"]


async def test_atop_order_matters(materializer: Materializer) -> None:
    tag = BidiFlow.from_functions(lambda s: f"<{s}", lambda s: f"{s}>")
    paren = BidiFlow.from_functions(lambda s: f"({s}", lambda s: f"{s})")
    seen: list[str] = []
    bottom = Flow[str]().map(lambda s: (seen.append(s), s)[1])
    out = await Source.single("x").via(tag.atop(paren).join(bottom)).run_with(Sink.seq())
    # down: tag then paren; up: paren then tag
    assert seen == ["(<x"]
    assert out == ["(<x)>"]
    seen.clear()
    out = await Source.single("x").via(paren.atop(tag).join(bottom)).run_with(Sink.seq())
    assert seen == ["<(x"]
    assert out == ["<(x>)"]
    del materializer


async def test_flow_join_bidi_closes_its_top(materializer: Materializer) -> None:
    # A server: messages come up through the codec into the handler, whose answers go
    # down through it again; the result is a Flow of bytes.
    handler = Flow[str]().map(str.upper)
    server = handler.join(codec())
    assert isinstance(server, Flow)
    got = await Source.from_iterable([b"ab", b"cd"]).via(server).run_with(Sink.seq(), materializer)
    assert got == [b"AB", b"CD"]
    # the same as the reversed bidi joined from above
    same = codec().reversed().join(handler)
    got2 = await Source.from_iterable([b"ab"]).via(same).run_with(Sink.seq(), materializer)
    assert got2 == [b"AB"]


async def test_flow_join_flow_still_closes_a_cycle(materializer: Materializer) -> None:
    seen: list[int] = []
    feedback = (
        Flow[int]()
        .map(lambda x: x + 1)
        .buffer(4, OverflowStrategy.backpressure)  # a cycle needs room to turn (4.4)
        .prepend(Source.single(0))
    )
    graph = (
        Flow[int]()
        .map(lambda x: (seen.append(x), x)[1])
        .take(3)
        .watch_termination(Keep.right)
        .join(feedback)
    )
    assert isinstance(graph, RunnableGraph)
    await asyncio.wait_for(graph.run(materializer), 5)
    assert seen == [0, 1, 2]


async def test_reversed_swaps_the_directions(materializer: Materializer) -> None:
    rev = codec().reversed()
    assert isinstance(rev.shape, BidiShape)
    # in1 of the reversed bidi is the decoding side now
    loop = Flow[str]().map(lambda s: s * 2)
    flow = rev.join(loop)
    assert await Source.single(b"ab").via(flow).run_with(Sink.seq(), materializer) == [b"abab"]
    # reversing twice gives the original
    again = rev.reversed().join(Flow[bytes]().map(lambda b: b + b"!"))
    assert await Source.single("x").via(again).run_with(Sink.seq(), materializer) == ["x!"]


async def test_identity_changes_nothing(materializer: Materializer) -> None:
    flow = BidiFlow.identity().atop(codec()).atop(BidiFlow.identity()).join(Flow[bytes]())
    assert await Source.single("z").via(flow).run_with(Sink.seq(), materializer) == ["z"]
    ident = BidiFlow.identity().join(Flow[int]().map(lambda x: -x))
    assert await Source.from_iterable([1, 2]).via(ident).run_with(Sink.seq()) == [-1, -2]


async def test_from_graph_takes_a_graph_dsl_bidi(materializer: Materializer) -> None:
    def blueprint(b: Any) -> BidiShape:
        up = b.add(Flow[int]().map(lambda x: x + 1))
        down = b.add(Flow[int]().map(lambda x: x * 10))
        return BidiShape(up.in_, up.out, down.in_, down.out)

    bidi = BidiFlow.from_graph(GraphDSL.create(blueprint))
    flow = bidi.join(Flow[int]().map(lambda x: x + 100))
    assert await Source.single(1).via(flow).run_with(Sink.seq(), materializer) == [1020]


# -- materialized values --------------------------------------------------------------------
async def test_materialized_values_are_combined(materializer: Materializer) -> None:
    left = Flow[int]().map_materialized_value(lambda _: "f1")
    right = Flow[int]().map_materialized_value(lambda _: "f2")
    bidi = BidiFlow.from_flows_mat(left, right, Keep.both)
    top = BidiFlow.from_functions(lambda x: x, lambda x: x).map_materialized_value(lambda _: "top")
    plain = BidiFlow.from_flows(left, right).join(Flow[int]())
    assert Source.single(1).via_mat(plain, Keep.right).to(Sink.ignore()).run() is NotUsed

    stacked = top.atop_mat(bidi, Keep.both)
    joined = stacked.join_mat(Flow[int]().map_materialized_value(lambda _: "j"), Keep.both)
    got = Source.single(1).via_mat(joined, Keep.right).to(Sink.ignore()).run(materializer)
    assert got == (("top", ("f1", "f2")), "j")
    kept = Source.single(1).via_mat(top.atop(bidi).join(Flow[int]()), Keep.right)
    assert kept.to(Sink.ignore()).run(materializer) == "top"

    # Flow.join(bidi): the flow's value first
    handler = Flow[int]().map_materialized_value(lambda _: "h")
    f = handler.join_mat(bidi, lambda a, b: (a, b))
    assert Source.single(1).via_mat(f, Keep.right).to(Sink.ignore()).run(materializer) == (
        "h",
        ("f1", "f2"),
    )
    assert (
        Source.single(1).via_mat(handler.join(bidi), Keep.right).to(Sink.ignore()).run(materializer)
        == "h"
    )
    # map_materialized_value and a fresh value per run
    counter = iter(range(10))
    counted = bidi.map_materialized_value(lambda _: next(counter)).join(Flow[int]())
    runs = [Source.single(1).via_mat(counted, Keep.right).to(Sink.ignore()).run() for _ in "ab"]
    assert runs == [0, 1]


async def test_watch_termination_values_through_a_stack(materializer: Materializer) -> None:
    watched = BidiFlow.from_flows_mat(
        Flow[int]().watch_termination(Keep.right),
        Flow[int]().watch_termination(Keep.right),
        Keep.both,
    )
    (down, up), out = (
        Source.from_iterable([1, 2, 3])
        .via_mat(watched.join(Flow[int]().map(lambda x: x * 2)), Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert await out == [2, 4, 6]
    await down
    await up


# -- termination: the two directions are independent -----------------------------------------
def _probed(bidi: BidiFlow[Any, Any, Any, Any, Any]) -> RunnableGraph[Any]:
    """``bidi`` with a probe at each of its four ports (GraphDSL, b.add(bidi))."""

    def blueprint(b: Any, src1: Any, sink1: Any, src2: Any, sink2: Any) -> Any:
        shape = b.add(bidi)
        assert isinstance(shape, BidiShape)
        src1.out >> shape.in1
        shape.out1 >> sink1.in_
        src2.out >> shape.in2
        shape.out2 >> sink2.in_
        return ClosedShape

    return RunnableGraph.from_graph(
        GraphDSL.create(
            blueprint, TestSource.probe(), TestSink.probe(), TestSource.probe(), TestSink.probe()
        )
    )


def _two_flows() -> BidiFlow[int, int, int, int, Any]:
    return BidiFlow.from_flows(Flow[int]().map(lambda x: x + 1), Flow[int]().map(lambda x: -x))


async def test_bidi_in_graph_dsl_passes_both_directions(materializer: Materializer) -> None:
    src1, sink1, src2, sink2 = _probed(_two_flows()).run(materializer)
    sink1.request(2)
    sink2.request(2)
    src1.send_next(1)
    src2.send_next(5)
    await sink1.expect_next(2)
    await sink2.expect_next(-5)
    src1.send_complete()
    src2.send_complete()
    await sink1.expect_complete()
    await sink2.expect_complete()


async def test_completion_of_one_side_leaves_the_other_running(
    materializer: Materializer,
) -> None:
    src1, sink1, src2, sink2 = _probed(_two_flows()).run(materializer)
    sink1.request(5)
    sink2.request(5)
    src1.send_complete()
    await sink1.expect_complete()
    src2.send_next(7)
    await sink2.expect_next(-7)
    src2.send_complete()
    await sink2.expect_complete()


async def test_failure_of_one_side_leaves_the_other_running(materializer: Materializer) -> None:
    src1, sink1, src2, sink2 = _probed(_two_flows()).run(materializer)
    sink1.request(5)
    sink2.request(5)
    src2.send_error(Boom("inbound"))
    err = await sink2.expect_error()
    assert isinstance(err, Boom)
    src1.send_next(1)
    await sink1.expect_next(2)
    src1.send_complete()
    await sink1.expect_complete()


async def test_cancellation_of_one_side_leaves_the_other_running(
    materializer: Materializer,
) -> None:
    src1, sink1, src2, sink2 = _probed(_two_flows()).run(materializer)
    sink1.request(5)
    sink2.request(5)
    sink1.cancel()
    await src1.expect_cancellation()
    src2.send_next(3)
    await sink2.expect_next(-3)
    src2.send_complete()
    await sink2.expect_complete()


async def test_a_failing_function_fails_its_own_direction_only(
    materializer: Materializer,
) -> None:
    def bad(x: int) -> int:
        raise Boom(f"cannot encode {x}")

    src1, sink1, src2, sink2 = _probed(BidiFlow.from_functions(bad, lambda x: x)).run(materializer)
    sink1.request(1)
    sink2.request(1)
    src1.send_next(1)
    assert "cannot encode 1" in str(await sink1.expect_error())
    await src1.expect_cancellation()
    src2.send_next(4)
    await sink2.expect_next(4)
    src2.send_complete()
    await sink2.expect_complete()


async def test_joined_flow_completes_when_both_directions_are_done(
    materializer: Materializer,
) -> None:
    # upstream completes -> the outbound side completes the bottom flow -> which completes
    # the inbound side -> downstream completes
    flow = codec().atop(framing()).join(Flow[bytes]())
    out = Source.from_iterable(["a"]).via(flow).run_with(TestSink.probe(), materializer)
    out.request(2)
    await out.expect_next("a")
    await out.expect_complete()


# -- errors and attributes ------------------------------------------------------------------
def test_from_graph_refuses_a_shape_that_is_not_bidi() -> None:
    with pytest.raises(IllegalGraphError, match="BidiFlow.from_graph needs a BidiFlow"):
        BidiFlow.from_graph(Flow[int]())
    with pytest.raises(IllegalGraphError, match="atop"):
        codec().atop(Flow[int]())  # type: ignore[arg-type]
    with pytest.raises(IllegalGraphError, match="BidiFlow.join"):
        codec().join(Sink.ignore())  # type: ignore[arg-type]
    with pytest.raises(IllegalGraphError, match="join\\(\\) needs a Flow or a BidiFlow"):
        Flow[int]().join(Sink.ignore())  # type: ignore[call-overload]
    with pytest.raises(IllegalGraphError, match="from_flows_mat\\(flow2\\)"):
        BidiFlow.from_flows(Flow[int](), Source.single(1))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="from_functions"):
        BidiFlow.from_functions(1, str)  # type: ignore[arg-type]


async def test_named_and_attributes_keep_the_bidi(materializer: Materializer) -> None:
    named = codec().named("codec").async_boundary()
    assert isinstance(named, BidiFlow)
    assert "BidiShape" in repr(named)
    flow = named.atop(framing()).join(Flow[bytes]())
    assert await Source.single("n").via(flow).run_with(Sink.seq(), materializer) == ["n"]


# -- typing -------------------------------------------------------------------------------
TYPED = """
from typing import Any, assert_type
from reactive import BidiFlow, Flow, Keep, NotUsed, RunnableGraph
from reactive._keep import NotUsedType

def encode(s: str) -> bytes:
    return s.encode()
def decode(b: bytes) -> str:
    return b.decode()
enc = BidiFlow.from_functions(encode, decode)
assert_type(enc, BidiFlow[str, bytes, bytes, str, NotUsedType])
assert_type(BidiFlow.identity(), BidiFlow[Any, Any, Any, Any, NotUsedType])
frames = BidiFlow.from_flows(Flow[bytes](), Flow[bytes]())
assert_type(frames, BidiFlow[bytes, bytes, bytes, bytes, NotUsedType])
stack = enc.atop(frames)
assert_type(stack, BidiFlow[str, bytes, bytes, str, NotUsedType])
assert_type(stack.join(Flow[bytes]()), Flow[str, str, NotUsedType])
assert_type(stack.reversed(), BidiFlow[bytes, str, str, bytes, NotUsedType])
assert_type(Flow[str]().join(enc), Flow[bytes, bytes, NotUsedType])
assert_type(Flow[int]().join(Flow[int]()), RunnableGraph[NotUsedType])
assert_type(stack.map_materialized_value(lambda _: 1), BidiFlow[str, bytes, bytes, str, int])
assert_type(stack.named("s"), BidiFlow[str, bytes, bytes, str, NotUsedType])
both = BidiFlow.from_flows_mat(
    Flow[int]().map_materialized_value(lambda _: "a"), Flow[str](), Keep.both
)
assert_type(both, BidiFlow[int, int, str, str, tuple[str, NotUsedType]])
assert_type(
    stack.join_mat(Flow[bytes]().map_materialized_value(lambda _: 2.0), Keep.right),
    Flow[str, str, float],
)
assert_type(
    Flow[str]().map_materialized_value(lambda _: 1).join_mat(enc, Keep.both),
    Flow[bytes, bytes, tuple[int, NotUsedType]],
)
stack.join(Flow[str]())  # E: wrong element type
"""


@pytest.mark.subprocess_only  # mypy, in a subprocess: no event loop at all
def test_typing_of_bidi_flow() -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bidi_types.py"
        path.write_text(textwrap.dedent(TYPED))
        cache = Path(tempfile.gettempdir()) / "reactive-mypy-cache-bidi-test"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mypy",
                "--follow-imports=silent",
                "--cache-dir",
                str(cache),
                "--no-error-summary",
                "--show-error-codes",
                str(path),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
    # exactly one error, on the line marked "# E:" (a Flow of the wrong element type)
    marked = TYPED.splitlines().index("stack.join(Flow[str]())  # E: wrong element type")
    assert len(lines) == 1, done.stdout + done.stderr
    assert f"bidi_types.py:{marked + 1}:" in lines[0], lines
    assert "arg-type" in lines[0], lines

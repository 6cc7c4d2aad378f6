"""Snapshots (reactive.observe): the interpreter's connection state, islands, buffers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import Attributes, Flow, Keep, Materializer, OverflowStrategy, Sink, Source
from reactive.observe import ConnectionSnapshot, MaterializerSnapshot, snapshot
from reactive.stage import GraphStage, GraphStageLogic, InHandler, OutHandler
from reactive.testkit import TestSink, TestSource


async def settle(rounds: int = 30) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


class _Hold(GraphStage[Any]):
    """Pulls once and never grabs what arrives: the element stays available."""

    def __init__(self) -> None:
        from reactive.stage import FlowShape, Inlet, Outlet

        self.shape = FlowShape(Inlet("Hold.in"), Outlet("Hold.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _HoldLogic(self.shape)


class _HoldLogic(GraphStageLogic, InHandler, OutHandler):
    def __init__(self, shape: Any) -> None:
        super().__init__(shape)
        self.set_handlers(shape.in_, shape.out, self)

    def pre_start(self) -> None:
        self.pull(self.shape.in_)

    def on_push(self) -> None:
        pass  # not grabbed: the element waits on the inlet

    def on_pull(self) -> None:
        pass


def conn(snap: MaterializerSnapshot, upstream: str, downstream: str) -> ConnectionSnapshot:
    found = [
        c
        for isl in snap.islands
        for c in isl.connections
        if c.upstream == upstream and c.downstream == downstream
    ]
    assert len(found) == 1, found
    return found[0]


async def test_stuck_graph_shows_which_connection_has_demand_and_which_an_element() -> None:
    async with Materializer(metrics=False) as mat:  # (whatever REACTIVE_METRICS says)
        src, sink = (
            TestSource.probe()
            .named("src")
            .via(Flow.from_graph(_Hold()).named("hold"))
            .map(lambda x: x)
            .named("double")
            .to_mat(TestSink.probe().named("sink"), Keep.both)
            .named("stuck")
            .run(mat)
        )
        sink.request(1)
        await src.expect_request()
        await settle()
        snap = mat.snapshot()
        assert [g.name for g in snap.graphs] == ["stuck"]
        # The sink asked, the map passed the demand on to hold, which pulled the source
        # on its own: every connection waits for an element.
        assert conn(snap, "double", "sink").state == "pulled"
        assert conn(snap, "hold", "double").state == "pulled"
        assert conn(snap, "src", "hold").state == "pulled"
        src.send_next(1)
        await settle()
        snap = mat.snapshot()
        held = conn(snap, "src", "hold")
        assert held.state == "pushed" and held.element_available and not held.pulled
        # Downstream of hold nothing moved: the sink's demand is still there.
        assert conn(snap, "hold", "double").pulled
        assert conn(snap, "double", "sink").pulled
        assert not conn(snap, "double", "sink").element_available
        stage = snap.stage("hold")
        assert stage.kind == "_HoldLogic" and not stage.stopped
        assert stage.inlets == (held,) and stage.metrics is None and held.metrics is None
        sink.cancel()
        await settle()
        # Every stage stopped: a graph without metrics leaves the snapshot.
        assert mat.snapshot().graphs == ()


async def test_snapshot_lists_islands_and_boundary_buffer_fill() -> None:
    async with Materializer() as mat:
        src, sink = (
            TestSource.probe()
            .named("src")
            .async_boundary()
            .map(lambda x: x)
            .named("m")
            .to_mat(TestSink.probe(), Keep.both)
            .run(mat)
        )
        await src.expect_request()
        for i in range(5):
            src.send_next(i)
        await settle()
        snap = snapshot(mat)
        (graph,) = snap.graphs
        assert len(graph.islands) == 2
        assert {isl.graph for isl in graph.islands} == {graph.name}
        inbound = snap.stage("m.async-in")
        assert inbound.is_boundary
        assert inbound.buffer is not None
        assert (inbound.buffer.used, inbound.buffer.capacity) == (5, 16)
        assert inbound.buffer.fill == 5 / 16
        sink.request(2)
        await sink.expect_next(0, 1)
        assert mat.snapshot().stage("m.async-in").buffer.used == 3  # type: ignore[union-attr]
        sink.cancel()


async def test_buffer_stage_fill_level() -> None:
    async with Materializer() as mat:
        src, sink = (
            TestSource.probe()
            .named("src")
            .buffer(10, OverflowStrategy.backpressure)
            .named("buf")
            .to_mat(TestSink.probe(), Keep.both)
            .run(mat)
        )
        for i in range(4):
            src.send_next(i)
        await settle()
        b = mat.snapshot().stage("buf").buffer
        assert b is not None and (b.used, b.capacity) == (4, 10)
        sink.cancel()


async def test_finished_graphs_with_metrics_are_kept_with_their_last_state() -> None:
    async with Materializer() as mat:
        graph = Source.from_iterable([1, 2, 3]).to_mat(Sink.seq(), Keep.right).named("numbers")
        r = await graph.add_attributes(Attributes.metrics(True)).run(mat)
        assert r == [1, 2, 3]
        await settle()
        g = mat.snapshot().graph("numbers")
        assert g.finished
        assert all(s.stopped for s in g.stages)
        assert g.stages[-1].metrics is not None and g.stages[-1].metrics.elements_in == 3
        with pytest.raises(KeyError, match="no graph named 'nope'"):
            mat.snapshot().graph("nope")


async def test_finished_graphs_keep_no_stage_alive() -> None:
    """Reactive Streams rule 3.13: what a stream referenced is released when it ends."""
    import gc
    import weakref

    class Payload:
        pass

    for metrics in (False, True):
        async with Materializer(metrics=metrics) as mat:
            payload = Payload()
            ref = weakref.ref(payload)
            result = (
                Source.single(payload)
                .map(lambda p: 1)
                .to_mat(Sink.seq(), Keep.right)
                .named("once")
                .run(mat)
            )
            del payload  # the blueprint is gone too: only the stream could keep it
            assert await result == [1]
            await settle()
            gc.collect()
            assert ref() is None
            names = [g.name for g in mat.snapshot().graphs]
            # A finished graph without metrics leaves the snapshot; with them, its frozen
            # final state stays.
            assert names == (["once"] if metrics else [])


async def test_stage_ids_are_unique_within_a_graph() -> None:
    async with Materializer() as mat:
        src, sink = (
            TestSource.probe()
            .via(Flow.from_graph(_Hold()).named("h"))
            .via(Flow.from_graph(_Hold()).named("h"))
            .to_mat(TestSink.probe(), Keep.both)
            .run(mat)
        )
        await settle()
        g = mat.snapshot().graphs[0]
        assert [s.id for s in g.stages if s.name == "h"] == ["h", "h#2"]
        assert g.stage("h#2").name == "h"
        with pytest.raises(KeyError, match="no stage 'missing'"):
            g.stage("missing")
        sink.cancel()
        src.send_complete()


def test_metrics_attribute_is_a_plain_attribute() -> None:
    assert Attributes.metrics(True).get("metrics") is True

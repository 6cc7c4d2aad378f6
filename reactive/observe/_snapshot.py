"""Snapshots: a frozen view of the graphs a materializer runs (Akka's ``streamSnapshots``).

A snapshot reads the interpreter's own state (islands, live logics, the bits of every
connection, boundary and ``buffer`` fill levels) at the moment it is taken, and the
counters of graphs that have metrics on (``reactive.observe._metering``). Taking one
costs a walk over the stages; running streams pay nothing for it.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from .._impl.interpreter import AVAIL, DEMAND, IN_CLOSED, OUT_CLOSED, PULL_REQ, PUSH_REQ

__all__ = [
    "BufferSnapshot",
    "ConnectionSnapshot",
    "GraphSnapshot",
    "IslandSnapshot",
    "MaterializerSnapshot",
    "PortMetrics",
    "Gauges",
    "StageMetrics",
    "StageSnapshot",
]

#: A stage's own gauges (see ``StageSnapshot.gauges``): a figure, or figures by key
#: (e.g. a consumer's lag per partition).
Gauges = Mapping[str, "float | Mapping[str, float]"]

#: Finished graphs a materializer keeps for snapshots (their last counters).
KEEP_FINISHED = 16

ConnectionState = Literal["idle", "pulled", "pushed", "closed"]

_T = TypeVar("_T")


@dataclass(frozen=True)
class PortMetrics:
    """Counters of one connection (present when the graph has metrics on).

    ``backpressured_seconds``: time with no demand outstanding (the outlet waits for
    demand); ``starved_seconds``: time with demand outstanding and no element pushed yet
    (the inlet waits for an element). The shares are those times over their sum (the
    connection's open lifetime), 0.0 before any time passed. Time is the materializer's
    clock. ``pushes`` counts hand-overs (a batch on the fused fast paths is one).
    """

    elements: int
    pushes: int
    pulls: int
    backpressured_seconds: float
    starved_seconds: float
    #: Clock time the connection opened (None in counters summed over connections);
    #: with the port names it tells connections apart between two snapshots.
    opened: float | None = field(default=None, compare=False)

    def since(self, earlier: PortMetrics | None) -> PortMetrics:
        """The counters between ``earlier`` (this connection's in an earlier snapshot)
        and these: each count and time less ``earlier``'s, so the shares are those of the
        interval (the time the connection was open in it). The counters only grow: a
        count smaller than ``earlier``'s raises ``ValueError`` (not the same connection,
        or not an earlier snapshot). ``earlier=None`` (the connection opened in the
        interval) gives these counters as they are."""
        if earlier is None:
            return self
        if (
            self.elements < earlier.elements
            or self.pushes < earlier.pushes
            or self.pulls < earlier.pulls
        ):
            raise ValueError(
                "PortMetrics.since: the earlier counters are larger "
                f"(elements {earlier.elements} > {self.elements}, pushes {earlier.pushes} > "
                f"{self.pushes} or pulls {earlier.pulls} > {self.pulls}): not an earlier "
                "snapshot of this connection"
            )
        return PortMetrics(
            self.elements - earlier.elements,
            self.pushes - earlier.pushes,
            self.pulls - earlier.pulls,
            # (the times are sums of clock readings: a rounding error must not go below 0)
            max(0.0, self.backpressured_seconds - earlier.backpressured_seconds),
            max(0.0, self.starved_seconds - earlier.starved_seconds),
            self.opened,
        )

    @property
    def backpressured_share(self) -> float:
        """Share of the open lifetime the outlet waited for demand (0.0 to 1.0)."""
        total = self.backpressured_seconds + self.starved_seconds
        return self.backpressured_seconds / total if total > 0 else 0.0

    @property
    def starved_share(self) -> float:
        """Share of the open lifetime the inlet waited for an element (0.0 to 1.0)."""
        total = self.backpressured_seconds + self.starved_seconds
        return self.starved_seconds / total if total > 0 else 0.0


@dataclass(frozen=True)
class ConnectionSnapshot:
    """One edge inside an island: ``upstream.outlet -> downstream.inlet`` and its state.

    ``state`` is ``"pulled"`` (demand outstanding, no element yet), ``"pushed"`` (an
    element was pushed and not yet grabbed), ``"closed"`` (either side closed) or
    ``"idle"`` (neither: the downstream has not asked).
    """

    upstream: str
    outlet: str
    downstream: str
    inlet: str
    state: ConnectionState
    pulled: bool
    element_available: bool
    upstream_closed: bool
    downstream_closed: bool
    metrics: PortMetrics | None

    @property
    def closed(self) -> bool:
        """Either side closed."""
        return self.upstream_closed or self.downstream_closed


@dataclass(frozen=True)
class BufferSnapshot:
    """Fill level of a stage's buffer (an async boundary's, or ``buffer``'s)."""

    used: int
    capacity: int | None

    @property
    def fill(self) -> float | None:
        """``used / capacity`` (None without a fixed capacity)."""
        return self.used / self.capacity if self.capacity else None


@dataclass(frozen=True)
class StageMetrics:
    """Stage-level counters, summed or taken over its ports (see ``StageSnapshot``).

    ``backpressured_share``: the largest share over its outlets (a fan-out waits on its
    slowest output); ``starved_share``: the largest over its inlets. ``errors`` counts
    exceptions its handlers and its functions raised (also those supervision resumed or
    restarted), whichever path ran them (a fused run, a worker pool, a junction's batch);
    ``restarts`` the supervision restarts; ``resumes`` the supervision resumes and the
    resume that follows a restart (the operator reset, its element dropped; a ``scan``
    that emits its zero again instead does not resume). ``failed``: the stage failed
    with an error of its own (its handler or function raised, or it called
    ``fail_stage`` with an error no other stage failed with first): the origin of a
    failure, not the stages it then reached (they stop, failing or cancelled, all the
    same).
    """

    elements_in: int
    elements_out: int
    pulls: int
    pushes: int
    backpressured_share: float
    starved_share: float
    errors: int
    restarts: int
    resumes: int
    failed: bool


@dataclass(frozen=True)
class StageSnapshot:
    """One running (or stopped) logic: a stage, or a fused run of simple operators.

    ``name`` is the stage's name (a fused run is named ``map+filter+...``); ``id`` is
    unique within its graph (``map``, ``map#2``, ...), given when the graph is
    materialized and kept while it runs (stages that stop do not renumber the others).
    A stage of a substream (``group_by``, ``flat_map_merge``, a restart's inner
    stream...) is named after the stage that runs it, the substream's number and its
    own id in the substream: ``merge_substreams[3]/map``; ``series`` drops the numbers
    (``merge_substreams/map``): the exports label a substream's stages by series, so
    every substream of one kind is one series, its counters summed over the substreams
    running and those that ended (``GraphSnapshot.retired``). For other stages
    ``series`` is ``id``. ``inlets``/``outlets`` are the connections at its ports in
    port order; ``substream_inlets``/``substream_outlets`` those of the substreams it
    reads from (``SubSinkInlet``: the connection into the substream's ``SubSink``) and
    feeds (``SubSourceOutlet``: the one out of its ``SubSource``), running now.

    ``gauges`` are figures the stage reports about itself, read when the snapshot is
    taken, with or without metrics: its logic's ``observe_gauges()`` if it defines one
    (a custom stage may; it must be cheap and must not raise). The Kafka stages report
    ``kafka_consumer_lag`` (by ``topic-partition``), ``kafka_records_buffered``,
    ``kafka_commits_in_flight``, ``kafka_messages_in_flight`` and
    ``kafka_produce_latency_p50_seconds`` / ``..._p99_seconds`` (see the README).
    """

    id: str
    name: str
    kind: str
    graph: str
    island: str
    stopped: bool
    inlets: tuple[ConnectionSnapshot, ...]
    outlets: tuple[ConnectionSnapshot, ...]
    buffer: BufferSnapshot | None
    metrics: StageMetrics | None
    gauges: Gauges = field(default_factory=dict)
    series: str = ""
    substream_inlets: tuple[ConnectionSnapshot, ...] = ()
    substream_outlets: tuple[ConnectionSnapshot, ...] = ()

    def __post_init__(self) -> None:
        if not self.series:
            object.__setattr__(self, "series", self.id)

    def since(self, earlier: StageSnapshot | None) -> StageSnapshot:
        """This stage with its counters over the interval since ``earlier`` (the same
        stage in an earlier snapshot of its graph): each connection's counters less its
        counters then (``PortMetrics.since``), so the shares, the ``metrics`` and
        ``reactive.observe.blame`` are those of the interval. A connection opened in the
        interval (a substream's) counts whole; one closed before it started has no
        ``metrics`` (it tells nothing about the interval). ``metrics.failed`` is the
        state now; ``errors``, ``restarts`` and ``resumes`` count the interval's.
        ``earlier=None`` (the stage appeared in the interval) gives this stage as it is.
        Over ``[start, t]`` (``earlier`` taken before anything ran) the shares and the
        blame are this snapshot's own."""
        if earlier is None:
            return self
        if earlier.id != self.id or earlier.graph != self.graph:
            raise ValueError(
                f"StageSnapshot.since: stage {earlier.id!r} of graph {earlier.graph!r} is "
                f"not an earlier snapshot of stage {self.id!r} of graph {self.graph!r}"
            )
        return _stage_since(self, earlier, {})

    @property
    def is_boundary(self) -> bool:
        """One half of an async boundary (``x.async-out`` / ``y.async-in``)."""
        return self.kind in ("_BoundaryIn", "_BoundaryOut")

    @property
    def is_plumbing(self) -> bool:
        """A stage that only carries elements between others: a half of an async
        boundary, or the ends of a substream (``SubSource`` / ``SubSink``, through which
        it talks to the stages that run it). The bottleneck finder does not blame them."""
        return self.kind in _PLUMBING


_PLUMBING = frozenset({"_BoundaryIn", "_BoundaryOut", "_SubSourceLogic", "_SubSinkLogic"})


@dataclass(frozen=True)
class IslandSnapshot:
    """One island (one interpreter on one task)."""

    name: str
    graph: str
    finished: bool
    queued_events: int
    mailbox: int
    stages: tuple[StageSnapshot, ...]
    connections: tuple[ConnectionSnapshot, ...]


@dataclass(frozen=True)
class GraphSnapshot:
    """One materialized graph: its islands (named by its ``name`` attribute or
    ``graph-N``).

    ``run`` tells apart graphs of the same name: the materialization's number in its
    materializer (1, 2, ...; an unnamed graph is ``graph-<run>``), the same in every
    snapshot of that graph, running or finished.

    ``retired`` (with metrics): the counters of the substreams' stages that stopped,
    summed by ``StageSnapshot.series`` (a stopped substream leaves ``islands``; its
    counts stay here, so the exported counters never go down).
    """

    name: str
    finished: bool
    metrics: bool
    islands: tuple[IslandSnapshot, ...]
    run: int = 0
    retired: CounterTotals | None = None

    @property
    def stages(self) -> tuple[StageSnapshot, ...]:
        """Every stage of every island, in materialization order."""
        return tuple(s for isl in self.islands for s in isl.stages)

    def stage(self, id: str) -> StageSnapshot:
        """The stage with that id (or name, when one stage has it); KeyError otherwise."""
        return _find(self.stages, id, f"graph {self.name!r}")

    def bottleneck(self, since: GraphSnapshot | None = None) -> StageSnapshot | None:
        """The stage the counters blame (see ``reactive.observe.bottleneck``); over the
        interval since ``since`` (an earlier snapshot of this graph) when given."""
        from ._blame import bottleneck

        return bottleneck(self.since(since).stages)

    def since(self, earlier: GraphSnapshot | None) -> GraphSnapshot:
        """This graph with its stages' counters over the interval since ``earlier`` (an
        earlier snapshot of the same run: same ``name`` and ``run``, else ``ValueError``):
        each stage as ``StageSnapshot.since`` gives it against the stage of the same id
        in ``earlier``; a stage not in ``earlier`` (it appeared in the interval, as a
        substream's do) counts whole. ``retired`` is None: the interval's counters are
        for reading, not for the exports (which stay cumulative). ``earlier=None`` gives
        this graph as it is."""
        if earlier is None:
            return self
        if earlier.name != self.name or earlier.run != self.run:
            raise ValueError(
                f"GraphSnapshot.since: graph {earlier.name!r} (run {earlier.run}) is not an "
                f"earlier snapshot of graph {self.name!r} (run {self.run})"
            )
        before = {s.id: s for s in earlier.stages}
        memo: dict[int, ConnectionSnapshot] = {}
        islands = []
        for isl in self.islands:
            stages = tuple(
                s if (b := before.get(s.id)) is None else _stage_since(s, b, memo)
                for s in isl.stages
            )
            conns = tuple(memo.get(id(c), c) for c in isl.connections)
            islands.append(dataclasses.replace(isl, stages=stages, connections=conns))
        return dataclasses.replace(self, islands=tuple(islands), retired=None)


@dataclass(frozen=True)
class MaterializerSnapshot:
    """Everything a materializer runs, at clock time ``time``: running graphs and the
    last finished ones that had metrics on (``KEEP_FINISHED``, frozen as they ended)."""

    name: str
    time: float
    graphs: tuple[GraphSnapshot, ...]

    @property
    def islands(self) -> tuple[IslandSnapshot, ...]:
        """The islands of every graph."""
        return tuple(i for g in self.graphs for i in g.islands)

    @property
    def stages(self) -> tuple[StageSnapshot, ...]:
        """The stages of every graph."""
        return tuple(s for g in self.graphs for s in g.stages)

    def since(self, earlier: MaterializerSnapshot | None) -> MaterializerSnapshot:
        """This snapshot with every graph's counters over the interval since ``earlier``
        (an earlier snapshot of the same materializer): each graph as
        ``GraphSnapshot.since`` gives it against the same run in ``earlier`` (a graph
        materialized in the interval counts whole). ``time`` stays this snapshot's; the
        interval is ``time - earlier.time``. ``earlier=None`` gives this snapshot."""
        if earlier is None:
            return self
        if earlier.name != self.name or earlier.time > self.time:
            raise ValueError(
                f"MaterializerSnapshot.since: the snapshot of materializer {earlier.name!r} "
                f"at {earlier.time!r} is not an earlier one of materializer {self.name!r} "
                f"(at {self.time!r})"
            )
        before = {(g.name, g.run): g for g in earlier.graphs}
        graphs = tuple(g.since(before.get((g.name, g.run))) for g in self.graphs)
        return dataclasses.replace(self, graphs=graphs)

    def graph(self, name: str) -> GraphSnapshot:
        """The most recent graph of that name; KeyError otherwise."""
        for g in reversed(self.graphs):
            if g.name == name:
                return g
        raise KeyError(f"no graph named {name!r} in materializer {self.name!r}")

    def stage(self, id: str) -> StageSnapshot:
        """The stage with that id or name in any graph; KeyError if none or ambiguous."""
        return _find(self.stages, id, f"materializer {self.name!r}")


def _conn_key(c: ConnectionSnapshot) -> tuple[str, str, str, str, float | None]:
    """What tells a connection apart from the others of a stage between two snapshots:
    its ports and the time it opened (a substream's connections share their names)."""
    return (c.upstream, c.outlet, c.downstream, c.inlet, c.metrics.opened if c.metrics else None)


def _conns_since(
    now: tuple[ConnectionSnapshot, ...],
    before: tuple[ConnectionSnapshot, ...],
    memo: dict[int, ConnectionSnapshot],
) -> tuple[ConnectionSnapshot, ...]:
    """``now``'s connections with their counters since their match in ``before`` (same
    key, in order); ``memo`` keeps one result per connection (a connection is an outlet
    of one stage and an inlet of another)."""
    pool: dict[tuple[str, str, str, str, float | None], list[ConnectionSnapshot]] = {}
    for c in before:
        pool.setdefault(_conn_key(c), []).append(c)
    out = []
    for c in now:
        same = pool.get(_conn_key(c))
        prev = same.pop(0) if same else None
        done = memo.get(id(c))
        if done is None:
            done = memo[id(c)] = _conn_since(c, prev)
        out.append(done)
    return tuple(out)


def _conn_since(c: ConnectionSnapshot, prev: ConnectionSnapshot | None) -> ConnectionSnapshot:
    m = c.metrics
    if m is None:
        return c
    pm = prev.metrics if prev is not None else None
    try:
        d = m.since(pm)
    except ValueError:  # counters that went down: another connection, counted whole
        d = m
    if prev is not None and prev.closed and d.backpressured_seconds + d.starved_seconds == 0:
        return dataclasses.replace(c, metrics=None)  # closed before the interval
    return dataclasses.replace(c, metrics=d)


def _stage_since(
    s: StageSnapshot, earlier: StageSnapshot, memo: dict[int, ConnectionSnapshot]
) -> StageSnapshot:
    ins = _conns_since(s.inlets, earlier.inlets, memo)
    outs = _conns_since(s.outlets, earlier.outlets, memo)
    sub_ins = _conns_since(s.substream_inlets, earlier.substream_inlets, memo)
    sub_outs = _conns_since(s.substream_outlets, earlier.substream_outlets, memo)
    m, em = s.metrics, earlier.metrics
    metrics = None
    if m is not None:
        metrics = _metrics_of(
            ins,
            outs,
            errors=max(0, m.errors - (em.errors if em else 0)),
            restarts=max(0, m.restarts - (em.restarts if em else 0)),
            resumes=max(0, m.resumes - (em.resumes if em else 0)),
            failed=m.failed,
        )
    return dataclasses.replace(
        s,
        inlets=ins,
        outlets=outs,
        substream_inlets=sub_ins,
        substream_outlets=sub_outs,
        metrics=metrics,
    )


def _find(stages: tuple[StageSnapshot, ...], key: str, where: str) -> StageSnapshot:
    by_id = [s for s in stages if s.id == key]
    if len(by_id) == 1:
        return by_id[0]
    by_name = [s for s in stages if s.name == key]
    if len(by_name) == 1:
        return by_name[0]
    if by_id or by_name:
        raise KeyError(f"several stages are named {key!r} in {where}: use a graph's stage ids")
    raise KeyError(f"no stage {key!r} in {where}")


# -- taking one ------------------------------------------------------------------------------
class GraphRun:
    """What the materializer keeps of one materialization, for snapshots.

    Nothing here may keep a finished stream alive (Reactive Streams rule 3.13: a
    cancelled subscriber must not stay referenced): a graph without metrics is seen
    through its islands' live logics only, and a graph with metrics keeps its logics
    (stopped ones too, for their counters) only until its last island finishes; it is
    then frozen into its final ``GraphSnapshot`` and the references are dropped.

    Past ``KEEP_FINISHED`` finished graphs, the oldest are dropped; the counters of a
    named one are first added to its materializer's ``retired_counters`` (see there).
    """

    __slots__ = (
        "mat",
        "name",
        "run",
        "unnamed",
        "islands",
        "logics",
        "metrics",
        "final",
        "pending",
        "substreams",
        "retired",
    )

    def __init__(self, mat: Any, name: str, islands: list[Any], logics: list[Any]) -> None:
        self.mat = mat
        self.name = name
        # The materializer numbers its materializations and names an unnamed one
        # graph-<number> (it has just counted this one).
        self.run: int = getattr(mat, "_graph_counter", 0)
        self.unnamed = name == f"graph-{self.run}"
        self.metrics = any(lg._attributes.get("metrics") for lg in logics)
        self.islands = [isl for isl in islands if isl.logics]
        self.logics = logics if self.metrics else []
        self.final: GraphSnapshot | None = None
        self.pending = len(self.islands)
        # Substreams materialized so far, by the id of the stage that runs them.
        self.substreams: dict[str, int] = {}
        # The counters of substream stages that stopped, by series (metrics on).
        self.retired: CounterTotals | None = None

    def start(self) -> None:
        if not self.islands:
            self._finish()
        for isl in self.islands:
            isl.at_finish(self._island_finished)

    @property
    def finished(self) -> bool:
        return self.pending <= 0

    def add_substream(self, parent: StageTag, islands: list[Any], logics: list[Any]) -> None:
        """Record a substream ``parent``'s stage materialized: its stages get ids after
        ``parent``'s, the islands it made are the graph's, and with metrics each stage's
        counters go to ``retired`` when it stops."""
        n = self.substreams[parent.id] = self.substreams.get(parent.id, 0) + 1
        if self.metrics:
            _SubTags(parent, n, logics, self).resolve()
        else:  # worked out if a snapshot ever asks (most substreams end unseen by one)
            group = _SubTags(parent, n, logics, self)
            for lg in logics:
                lg._observe = group
        fresh = [isl for isl in islands if isl.logics and not isl.finished]
        for isl in fresh:
            isl.graph = self.name
        self.islands.extend(fresh)
        self.pending += len(fresh)
        for isl in fresh:
            isl.at_finish(functools.partial(self._substream_island_finished, isl))
        if self.metrics:
            for lg in logics:
                lg._add_stop_hook(functools.partial(self._retire_stage, lg))

    def _retire_stage(self, logic: Any) -> None:
        """A substream's stage stopped: keep its counters by series (it leaves the
        snapshots with its island's live logics)."""
        try:
            snap = _stage_snapshot(logic, self, "", {})
        except Exception:  # pragma: no cover - a snapshot must never break a stream
            logging.getLogger("reactive").exception("could not keep the counters of %r", logic)
            return
        if snap.metrics is None:
            return
        if self.retired is None:
            self.retired = CounterTotals()
        self.retired.add_stage(self.name, snap)

    def _island_finished(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            self._finish()

    def _substream_island_finished(self, island: Any) -> None:
        # A finished substream's island leaves the graph at once (its stages' counters
        # are in ``retired``): a long-running graph opening substreams with async
        # boundaries would otherwise keep every one until it ends (memory and snapshot
        # time growing with the substreams ever run).
        islands = self.islands
        for i in range(len(islands) - 1, -1, -1):
            if islands[i] is island:
                del islands[i]
                break
        self._island_finished()

    def _finish(self) -> None:
        self.pending = 0
        if self.metrics:
            try:
                self.final = _graph_snapshot(self)
            except Exception:  # pragma: no cover - a snapshot must never break a stream
                logging.getLogger("reactive").exception(
                    "could not keep the final snapshot of graph %s", self.name
                )
                self.metrics = False
        self.islands = []
        self.logics = []
        graphs: list[GraphRun] = self.mat._graphs
        if not self.metrics:
            if self in graphs:
                graphs.remove(self)
            return
        done = [g for g in graphs if g.finished]
        if len(done) > KEEP_FINISHED:
            evicted = done[: len(done) - KEEP_FINISHED]
            _retire(self.mat, evicted)
            drop = {id(g) for g in evicted}
            self.mat._graphs = [g for g in graphs if id(g) not in drop]


class StageTag:
    """A stage's identity in its graph's snapshots (``StageSnapshot.id`` and
    ``series``), kept on its logic from materialization on."""

    __slots__ = ("id", "series", "run")

    def __init__(self, id: str, series: str, run: GraphRun) -> None:
        self.id = id
        self.series = series
        self.run = run


def _ids(logics: list[Any]) -> list[str]:
    """Ids for ``logics`` (one materialization, in its order): names numbered from the
    second on (``map``, ``map#2``), counted in the order a snapshot lists them then
    (islands by their first logic; in each, its boundary halves first and last)."""
    by_island: dict[int, list[Any]] = {}
    for lg in logics:
        by_island.setdefault(id(lg._island), []).append(lg)
    seen: dict[str, int] = {}
    given: dict[int, str] = {}
    for group in by_island.values():
        for lg in sorted(group, key=_island_rank):
            name = lg._stage_name
            k = seen[name] = seen.get(name, 0) + 1
            given[id(lg)] = name if k == 1 else f"{name}#{k}"
    return [given[id(lg)] for lg in logics]


def record_graph(mat: Any, name: str, islands: list[Any], logics: list[Any]) -> None:
    """Keep a materialization for snapshots while it runs (see ``GraphRun``)."""
    for isl in islands:
        isl.graph = name
    run = GraphRun(mat, name, islands, logics)
    for lg, sid in zip(logics, _ids(logics), strict=True):
        lg._observe = StageTag(sid, sid, run)
    mat._graphs.append(run)
    run.start()


class _SubTags:
    """The tags of one substream's stages (``parent``'s ``n``-th), given to them by
    :meth:`resolve`; until then each stage's ``_observe`` is this group (see ``_tag_of``).
    With metrics off, ids are worked out only for substreams a snapshot sees: a graph
    opening a substream per element paid ~9% for them."""

    __slots__ = ("parent", "n", "logics", "run")

    def __init__(self, parent: StageTag, n: int, logics: list[Any], run: GraphRun) -> None:
        self.parent = parent
        self.n = n
        self.logics = logics
        self.run = run

    def resolve(self) -> None:
        parent, n, run = self.parent, self.n, self.run
        for lg, inner in zip(self.logics, _ids(self.logics), strict=True):
            lg._observe = StageTag(f"{parent.id}[{n}]/{inner}", f"{parent.series}/{inner}", run)
        self.logics = []


def _tag_of(lg: Any) -> StageTag | None:
    """``lg``'s tag (None for a stage of no recorded graph)."""
    tag = lg._observe
    if tag.__class__ is _SubTags:
        tag.resolve()
        tag = lg._observe
    return tag  # type: ignore[no-any-return]


def record_substream(parent: Any, islands: list[Any], logics: list[Any]) -> bool:
    """Record the graph the running logic ``parent`` just materialized as a substream of
    ``parent``'s graph (``GraphRun.add_substream``); False when ``parent``'s graph is
    not recorded (or over): then it is a graph of its own."""
    tag = _tag_of(parent)
    if tag is None or tag.run.finished:
        return False
    tag.run.add_substream(tag, islands, logics)
    return True


def _state(st: int) -> ConnectionState:
    if st & (IN_CLOSED | OUT_CLOSED):
        return "closed"
    if st & (AVAIL | PUSH_REQ):
        return "pushed"
    if st & (PULL_REQ | DEMAND):
        return "pulled"
    return "idle"


def _port_metrics(conn: Any) -> PortMetrics | None:
    from ._metering import MeteredConnection

    if not isinstance(conn, MeteredConnection):
        return None
    idle, pending = conn.times()
    takes = conn.takes  # (each a pull and a push)
    return PortMetrics(
        conn.element_count(), conn.pushes + takes, conn.pulls + takes, idle, pending, conn.opened
    )


def _conn_snapshot(conn: Any, cache: dict[int, ConnectionSnapshot]) -> ConnectionSnapshot:
    hit = cache.get(id(conn))
    if hit is not None:
        return hit
    st = conn.state
    snap = ConnectionSnapshot(
        upstream=conn.out_logic._stage_name,
        outlet=getattr(conn.out_port, "name", repr(conn.out_port)),
        downstream=conn.in_logic._stage_name,
        inlet=getattr(conn.in_port, "name", repr(conn.in_port)),
        state=_state(st),
        pulled=bool(st & (PULL_REQ | DEMAND)) and not st & (IN_CLOSED | OUT_CLOSED),
        element_available=bool(st & (AVAIL | PUSH_REQ)),
        upstream_closed=bool(st & OUT_CLOSED),
        downstream_closed=bool(st & IN_CLOSED),
        metrics=_port_metrics(conn),
    )
    cache[id(conn)] = snap
    return snap


def _buffer_of(logic: Any) -> BufferSnapshot | None:
    from .._impl.boundary import _BoundaryIn, _BoundaryOut
    from .._ops.buffers import _BufferLogic

    if isinstance(logic, _BoundaryOut):
        return BufferSnapshot(len(logic.buffer), logic.size)
    if isinstance(logic, _BoundaryIn):
        return BufferSnapshot(len(logic.pending), None)
    if isinstance(logic, _BufferLogic):
        return BufferSnapshot(len(logic.buf), logic.size)
    return None


def _gauges_of(logic: Any) -> Gauges:
    read = getattr(logic, "observe_gauges", None)
    if read is None:
        return {}
    try:
        gauges = read()
    except Exception:  # a snapshot never fails for a stage's figures
        logging.getLogger("reactive").debug("observe_gauges() of %r raised", logic, exc_info=True)
        return {}
    return dict(gauges) if gauges else {}


def _stage_metrics(
    logic: Any, ins: tuple[ConnectionSnapshot, ...], outs: tuple[ConnectionSnapshot, ...]
) -> StageMetrics | None:
    sm = logic._stage_meter()
    if sm is None:
        return None
    return _metrics_of(
        ins, outs, errors=sm.errors, restarts=sm.restarts, resumes=sm.resumes, failed=sm.failed
    )


def _metrics_of(
    ins: tuple[ConnectionSnapshot, ...],
    outs: tuple[ConnectionSnapshot, ...],
    *,
    errors: int,
    restarts: int,
    resumes: int,
    failed: bool,
) -> StageMetrics:
    """A stage's figures from its connections' counters (``ins``, ``outs``) and its own
    counts of errors, restarts and resumes."""
    in_m = [c.metrics for c in ins if c.metrics is not None]
    out_m = [c.metrics for c in outs if c.metrics is not None]
    return StageMetrics(
        elements_in=sum(m.elements for m in in_m),
        elements_out=sum(m.elements for m in out_m),
        pulls=sum(m.pulls for m in in_m),
        pushes=sum(m.pushes for m in out_m),
        backpressured_share=max((m.backpressured_share for m in out_m), default=0.0),
        starved_share=max((m.starved_share for m in in_m), default=0.0),
        errors=errors,
        restarts=restarts,
        resumes=resumes,
        failed=failed,
    )


def _island_rank(logic: Any) -> int:
    kind = type(logic).__name__
    return 0 if kind == "_BoundaryOut" else 2 if kind == "_BoundaryIn" else 1


def _substream_ports(
    logics: Iterable[Any], cache: dict[int, ConnectionSnapshot]
) -> dict[int, tuple[list[ConnectionSnapshot], list[ConnectionSnapshot]]]:
    """By ``id`` of the logic owning them: the connections of the substreams it reads
    from (into their ``SubSink``) and feeds (out of their ``SubSource``)."""
    out: dict[int, tuple[list[ConnectionSnapshot], list[ConnectionSnapshot]]] = {}
    for lg in logics:
        # (by kind: this module does not import the operators, see test_layering)
        kind = type(lg).__name__
        if kind == "_SubSinkLogic":
            c, side = lg._conns.get(lg.in_), 0
        elif kind == "_SubSourceLogic":
            c, side = lg._conns.get(lg.out), 1
        else:
            continue
        if c is not None:
            owner = id(lg.handle._logic)
            out.setdefault(owner, ([], []))[side].append(_conn_snapshot(c, cache))
    return out


def _stage_snapshot(
    lg: Any,
    run: GraphRun,
    island: str,
    cache: dict[int, ConnectionSnapshot],
    subs: dict[int, tuple[list[ConnectionSnapshot], list[ConnectionSnapshot]]] | None = None,
) -> StageSnapshot:
    ins = tuple(_conn_snapshot(lg._conns[p], cache) for p in lg.shape.inlets if p in lg._conns)
    outs = tuple(_conn_snapshot(lg._conns[p], cache) for p in lg.shape.outlets if p in lg._conns)
    tag = _tag_of(lg)
    name = lg._stage_name
    sid, series = (tag.id, tag.series) if tag is not None else (name, name)
    sub = subs.get(id(lg)) if subs else None
    return StageSnapshot(
        id=sid,
        name=name,
        kind=type(lg).__name__,
        graph=run.name,
        island=island,
        stopped=lg._stopped,
        inlets=ins,
        outlets=outs,
        buffer=_buffer_of(lg),
        metrics=_stage_metrics(lg, ins, outs),
        gauges=_gauges_of(lg),
        series=series,
        substream_inlets=tuple(sub[0]) if sub else (),
        substream_outlets=tuple(sub[1]) if sub else (),
    )


def _graph_snapshot(run: GraphRun) -> GraphSnapshot:
    if run.final is not None:
        return run.final
    cache: dict[int, ConnectionSnapshot] = {}
    islands = []
    # Upstream islands first: the one holding the earliest materialized logic first.
    pos = {id(lg): i for i, lg in enumerate(run.logics)}
    order = sorted(
        run.islands,
        key=lambda isl: min(
            (pos[id(lg)] for lg in run.logics if lg._island is isl), default=len(pos)
        ),
    )
    per_island = []
    for isl in order:
        live = dict.fromkeys([lg for lg in run.logics if lg._island is isl])
        live.update(dict.fromkeys(list(isl.logics)))
        # The island's inbound boundary halves first, its outbound ones last.
        per_island.append((isl, sorted(live, key=_island_rank)))
    subs = _substream_ports((lg for _, lgs in per_island for lg in lgs), cache)
    for isl, logics in per_island:
        stages = []
        conns: dict[int, ConnectionSnapshot] = {}
        for lg in logics:
            stages.append(_stage_snapshot(lg, run, isl.name, cache, subs))
            for p in lg.shape.outlets:
                c = lg._conns.get(p)
                if c is not None:
                    conns[id(c)] = cache[id(c)]
        islands.append(
            IslandSnapshot(
                name=isl.name,
                graph=run.name,
                finished=isl.finished,
                queued_events=len(isl.queue),
                mailbox=len(isl.mailbox),
                stages=tuple(stages),
                connections=tuple(conns.values()),
            )
        )
    retired = run.retired.copy() if run.retired is not None else None
    return GraphSnapshot(run.name, run.finished, run.metrics, tuple(islands), run.run, retired)


def take_snapshot(mat: Any, graph: str | None = None) -> MaterializerSnapshot:
    """Build a ``MaterializerSnapshot`` of ``mat`` (only graph ``graph`` if given).

    Before ``mat`` is bound to an event loop (made outside one, nothing run yet) the
    snapshot is empty, at its clock's time (0.0 without a clock given): nothing ran, and
    taking it does not bind ``mat`` to a loop, as the exporters' empty views do not."""
    if getattr(mat, "_loop", True) is None:
        return MaterializerSnapshot(mat.name, _time_of(mat), ())
    runs = [g for g in mat._graphs if graph is None or g.name == graph]
    return MaterializerSnapshot(
        name=mat.name,
        time=mat.clock.time(),
        graphs=tuple(_graph_snapshot(g) for g in runs),
    )


def snapshot_from_any_thread(mat: Any, timeout: float = 5.0) -> MaterializerSnapshot:
    """``take_snapshot(mat)`` taken on the materializer's event loop.

    Exporters are called from other threads (an HTTP server's, an exporter's timer): the
    interpreter's structures may only be read on the loop that runs them, so from
    another thread the snapshot is taken there (``call_soon_threadsafe``) and waited for
    at most ``timeout`` seconds (``TimeoutError`` when the loop is blocked). Once the
    loop is closed, the snapshot is empty.
    """
    return _read_on_loop(
        mat, take_snapshot, lambda: MaterializerSnapshot(mat.name, _time_of(mat), ()), timeout
    )


def export_view_from_any_thread(mat: Any, timeout: float = 5.0) -> ExportView:
    """``export_view`` of a snapshot and the retired counters, both read on the
    materializer's event loop at the same moment (as ``snapshot_from_any_thread``:
    empty once the loop is closed)."""

    def read(mat: Any) -> tuple[MaterializerSnapshot, CounterTotals]:
        return take_snapshot(mat), retired_counters(mat).copy()

    def closed() -> tuple[MaterializerSnapshot, CounterTotals]:
        return MaterializerSnapshot(mat.name, _time_of(mat), ()), CounterTotals()

    snap, retired = _read_on_loop(mat, read, closed, timeout)
    return export_view(snap, retired)


def export_views_from_any_thread(
    mats: Iterable[Any], timeout: float = 5.0
) -> dict[str, ExportView]:
    """The ``export_view`` of several materializers, by materializer name, each read on
    its own event loop (``export_view_from_any_thread``). Materializers that share a
    name are one: their graphs and retired counters go into one view (counters summed
    per label set, gauges combined as for same-named graphs)."""
    reads: dict[str, list[tuple[MaterializerSnapshot, CounterTotals]]] = {}
    for mat in mats:

        def read(mat: Any) -> tuple[MaterializerSnapshot, CounterTotals]:
            return take_snapshot(mat), retired_counters(mat).copy()

        def closed(mat: Any = mat) -> tuple[MaterializerSnapshot, CounterTotals]:
            return MaterializerSnapshot(mat.name, _time_of(mat), ()), CounterTotals()

        reads.setdefault(mat.name, []).append(_read_on_loop(mat, read, closed, timeout))
    views: dict[str, ExportView] = {}
    for name, got in reads.items():
        if len(got) == 1:
            views[name] = export_view(*got[0])
            continue
        retired = CounterTotals()
        for _, r in got:
            retired.add(r)
        graphs = tuple(
            _numbered(g, k) for k, (snap, _) in enumerate(got, start=1) for g in snap.graphs
        )
        views[name] = export_view(MaterializerSnapshot(name, got[0][0].time, graphs), retired)
    return views


def _numbered(g: GraphSnapshot, k: int) -> GraphSnapshot:
    """``g``, of the ``k``-th of several materializers of one name: an unnamed graph
    (``graph-N``, numbered per materializer) of the second and later ones is labelled
    ``graph-N.k``, so it is not summed with the first one's ``graph-N`` (whose series
    would then go down when one of them leaves the snapshots: unnamed graphs are never
    retired). Named graphs of one name are one series, as within one materializer."""
    if k == 1 or g.name != f"graph-{g.run}":
        return g
    new = f"{g.name}.{k}"
    retired = None
    if g.retired is not None:
        retired = CounterTotals()
        retired.ports = {
            ((new, *key[1:]) if key[0] == g.name else key): v for key, v in g.retired.ports.items()
        }
        retired.stages = {
            ((new, *key[1:]) if key[0] == g.name else key): v for key, v in g.retired.stages.items()
        }
    return dataclasses.replace(g, name=new, retired=retired)


def _time_of(mat: Any) -> float:
    """The materializer's clock time, 0.0 before it ran anything (no clock bound yet)."""
    clock = getattr(mat, "_clock", None)
    return 0.0 if clock is None else float(clock.time())


def _read_on_loop(
    mat: Any, read: Callable[[Any], _T], closed: Callable[[], _T], timeout: float
) -> _T:
    """``read(mat)`` on the materializer's loop, from any thread; ``closed()`` when no loop
    runs it: none bound yet (a scrape before the program's loop started: nothing ran)
    or its loop closed."""
    import asyncio
    import concurrent.futures

    loop = getattr(mat, "_loop", None)
    if loop is None:
        return closed()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        return read(mat)
    if loop.is_closed():  # the program is over: nothing runs any more
        return closed()
    if not loop.is_running():
        # Between two run_until_complete calls, or stopped: nothing runs on it now, and a
        # callback handed to it would wait for the next run (the scrape timing out).
        return read(mat)
    fut: concurrent.futures.Future[_T] = concurrent.futures.Future()

    def take() -> None:
        try:
            fut.set_result(read(mat))
        except BaseException as exc:  # handed to the waiting thread
            fut.set_exception(exc)

    loop.call_soon_threadsafe(take)
    return fut.result(timeout)


# -- one figure per label set, for the exporters ---------------------------------------------
# Graphs may share a name (a pipeline run once per request, a job run again), and the
# exports label by name: two series with the same labels are an invalid scrape, and a
# counter must never go down. So the exporters publish one figure per label set:
#
# - counters: the sum over every run with those labels, running or finished, plus the
#   final counts of the runs already dropped from the snapshots (past KEEP_FINISHED),
#   kept per label set in ``retired_counters`` -- they only ever grow. An unnamed graph
#   (graph-N) is never retired: no other run shares its name, so its series just ends.
# - gauges: read from the running graphs with those labels: amounts (buffer used and
#   capacity, a stage's own gauges) summed, figures that do not add up (the back-pressured,
#   starved and blame ratios, failed, and own gauges named *_seconds or *_ratio, such as
#   latency percentiles) the largest; with none of them running, the last state of the
#   most recent finished one.

#: The labels of a port's series: graph name, stage series (``StageSnapshot.series``),
#: port name, direction (in/out).
PortKey = tuple[str, str, str, str]
#: The labels of a stage's series: graph name, stage series.
StageKey = tuple[str, str]

#: Own gauges (``StageSnapshot.gauges``) with these endings take the largest, not the sum.
_NOT_ADDED = ("_seconds", "_ratio")


@dataclass(frozen=True)
class StageCounts:
    """A stage's counters (from ``StageMetrics``)."""

    errors: int
    restarts: int
    resumes: int


class CounterTotals:
    """Counters summed per label set: ``ports`` (``PortMetrics`` summed field by field)
    and ``stages``."""

    __slots__ = ("ports", "stages")

    def __init__(self) -> None:
        self.ports: dict[PortKey, PortMetrics] = {}
        self.stages: dict[StageKey, StageCounts] = {}

    def copy(self) -> CounterTotals:
        out = CounterTotals()
        out.ports = dict(self.ports)
        out.stages = dict(self.stages)
        return out

    def add(self, other: CounterTotals) -> None:
        """Add ``other``'s counters to these."""
        for key, c in other.stages.items():
            self._add_stage(key, c)
        for pkey, pm in other.ports.items():
            self._add_port(pkey, pm)

    def _add_stage(self, key: StageKey, c: StageCounts) -> None:
        was = self.stages.get(key)
        self.stages[key] = (
            c
            if was is None
            else StageCounts(
                was.errors + c.errors, was.restarts + c.restarts, was.resumes + c.resumes
            )
        )

    def _add_port(self, pkey: PortKey, pm: PortMetrics) -> None:
        had = self.ports.get(pkey)
        self.ports[pkey] = (
            pm
            if had is None
            else PortMetrics(
                had.elements + pm.elements,
                had.pushes + pm.pushes,
                had.pulls + pm.pulls,
                had.backpressured_seconds + pm.backpressured_seconds,
                had.starved_seconds + pm.starved_seconds,
            )
        )

    def add_graph(self, g: GraphSnapshot) -> None:
        """Add the counters of ``g``'s stages that have metrics, and its retired ones."""
        for s in g.stages:
            self.add_stage(g.name, s)
        if g.retired is not None:
            self.add(g.retired)

    def add_stage(self, graph: str, s: StageSnapshot) -> None:
        """Add the counters of stage ``s`` of graph ``graph`` (if it has metrics), by its
        series."""
        m = s.metrics
        if m is None:
            return
        self._add_stage((graph, s.series), StageCounts(m.errors, m.restarts, m.resumes))
        for direction, conns in (("in", s.inlets), ("out", s.outlets)):
            for c in conns:
                pm = c.metrics
                if pm is None:
                    continue
                port = c.inlet if direction == "in" else c.outlet
                self._add_port((graph, s.series, port, direction), pm)


# Per materializer, without keeping one alive. Memory: one entry per label set of a named
# graph that was ever dropped (graph names are the user's: a bounded set), none for
# unnamed graphs.
_RETIRED: weakref.WeakKeyDictionary[Any, CounterTotals] = weakref.WeakKeyDictionary()


def retired_counters(mat: Any) -> CounterTotals:
    """The final counters of ``mat``'s named graphs dropped from its snapshots."""
    got = _RETIRED.get(mat)
    if got is None:
        got = _RETIRED[mat] = CounterTotals()
    return got


def _retire(mat: Any, runs: list[GraphRun]) -> None:
    finals = [run.final for run in runs if run.final is not None and not run.unnamed]
    if finals:
        retired = retired_counters(mat)
        for final in finals:
            retired.add_graph(final)


@dataclass(frozen=True)
class StageGauges:
    """The gauges of one stage label set (see ``export_view`` for how runs combine).

    The ratios and ``failed`` are None without metrics (``blame_ratio`` also for a
    boundary half); ``buffer_capacity`` None unless every buffer has a fixed one;
    ``own`` holds the stages' own gauges, figures by key with their keys as text.
    """

    backpressured_ratio: float | None
    starved_ratio: float | None
    blame_ratio: float | None
    failed: float | None
    buffer_used: int | None
    buffer_capacity: int | None
    own: Mapping[str, float | Mapping[str, float]]


@dataclass(frozen=True)
class ExportView:
    """What the exporters publish: one figure per label set (see ``export_view``)."""

    ports: Mapping[PortKey, PortMetrics]
    stage_counts: Mapping[StageKey, StageCounts]
    stages: Mapping[StageKey, StageGauges]


def export_view(snap: MaterializerSnapshot, retired: CounterTotals | None = None) -> ExportView:
    """One figure per label set of ``snap`` (graph, stage and for ports port and
    direction): counters summed over its runs and ``retired``, gauges from its running
    runs (amounts summed, ratios the largest) or, none running, its most recent finished
    one. See the comment above ``PortKey``."""
    counters = retired.copy() if retired is not None else CounterTotals()
    running: dict[StageKey, list[StageSnapshot]] = {}
    latest: dict[StageKey, StageSnapshot] = {}
    for g in snap.graphs:
        counters.add_graph(g)
        for s in g.stages:
            key = (g.name, s.series)
            if g.finished:
                latest[key] = s  # graphs are in materialization order: the last one wins
                running.setdefault(key, [])
            else:
                running.setdefault(key, []).append(s)
    stages = {key: _stage_gauges(runs or [latest[key]]) for key, runs in running.items()}
    return ExportView(counters.ports, counters.stages, stages)


def _stage_gauges(runs: list[StageSnapshot]) -> StageGauges:
    from ._blame import blame

    metered = [s.metrics for s in runs if s.metrics is not None]
    blamed = [blame(s) for s in runs if s.metrics is not None and not s.is_plumbing]
    buffers = [s.buffer for s in runs if s.buffer is not None]
    fixed = [b.capacity for b in buffers if b.capacity is not None]
    return StageGauges(
        backpressured_ratio=max((m.backpressured_share for m in metered), default=None),
        starved_ratio=max((m.starved_share for m in metered), default=None),
        blame_ratio=max(blamed, default=None),
        failed=max((1.0 if m.failed else 0.0 for m in metered), default=None),
        buffer_used=sum(b.used for b in buffers) if buffers else None,
        buffer_capacity=sum(fixed) if buffers and len(fixed) == len(buffers) else None,
        own=_own_gauges(runs),
    )


def _own_gauges(runs: list[StageSnapshot]) -> dict[str, float | Mapping[str, float]]:
    out: dict[str, float | Mapping[str, float]] = {}
    for s in runs:
        for name, value in s.gauges.items():
            largest = name.endswith(_NOT_ADDED)
            if isinstance(value, Mapping):
                keyed = out.setdefault(name, {})
                if not isinstance(keyed, dict):
                    continue  # a figure elsewhere, figures by key here: the first shape stays
                for k, v in value.items():
                    _combine(keyed, str(k), v, largest)
            elif not isinstance(out.get(name, 0.0), Mapping):
                _combine(out, name, value, largest)
    return out


def _combine(into: dict[str, Any], key: str, value: Any, largest: bool) -> None:
    try:
        v = float(value)
    except (TypeError, ValueError):  # not a figure: left out, as a raising gauge is
        return
    was = into.get(key)
    into[key] = v if was is None else max(was, v) if largest else was + v

"""The materializer: turns blueprints into running islands of logics.

Materialization is synchronous: it walks the module tree (chains iteratively, so a chain
of 10,000 operators needs no deep recursion), creates one logic per stage, assigns each
to an island (a new one under every async module), wires ports into ``Connection``s
within an island and into bounded boundaries between islands, computes the
materialized value, and only then starts one task per island. The materializer owns
every task it starts; ``shutdown()`` aborts what still runs with
``AbruptTerminationError`` and waits for the tasks to end.
"""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from typing import TYPE_CHECKING, Any, Self

from .._attributes import Attributes
from .._errors import IllegalGraphError, MaterializerShutdownError, PortStateError
from .._keep import NotUsed
from .._stage.logic import GraphStageLogic
from .clock import Clock, LoopClock
from .interpreter import Connection, Island
from .modules import AtomicModule, CompositeModule, LinearModule, Module

if TYPE_CHECKING:
    from collections.abc import Coroutine

__all__ = ["Materializer"]

log = logging.getLogger("reactive")

_defaults: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Materializer] = (
    weakref.WeakKeyDictionary()
)

_FAST_DEFAULT = os.environ.get("REACTIVE_FAST_PATHS", "1") not in ("0", "false", "no")
# ``REACTIVE_METRICS=1``: every materializer that does not say otherwise counts (metrics
# switched on in a deployed service without touching its code).
_METRICS_DEFAULT = os.environ.get("REACTIVE_METRICS", "0").lower() in ("1", "true", "yes", "on")


class Materializer:
    """Runs blueprints on the asyncio loop it is bound to, and owns their tasks.

    Use ``async with Materializer() as mat: graph.run(mat)``; leaving the block (or
    ``await mat.shutdown()``) aborts streams still running with
    ``AbruptTerminationError``; running a stream on it afterwards raises
    ``MaterializerShutdownError`` (a ``RuntimeError``, as Akka's
    ``IllegalStateException``, and an ``IllegalGraphError``). Without an explicit
    one, ``run()`` uses ``Materializer.default()``, one per running loop.

    ``clock`` replaces the loop clock for every timer (see ``reactive.testkit.ManualClock``);
    ``fast_paths=False`` turns the fused batch fast paths off (for differential tests).

    ``blocking_threshold`` (seconds, default 1.0; ``None`` turns the check off): when one
    run of a stream's interpreter holds the event loop longer than this (measured with
    ``clock``, per run, not per element), the materializer finds the stage doing
    synchronous work and logs one WARNING on the ``reactive`` logger naming it, with the
    remedy (run blocking functions in a thread: ``map_async`` with
    ``asyncio.to_thread``). It warns once; the attribute applies to streams started
    after it is set.

    ``metrics=True`` switches per-stage counters on for every stream this materializer
    starts (``Attributes.metrics(True)`` does it for one graph): elements, pushes and
    pulls per port, the time each connection spent waiting for demand or for an element,
    errors and supervision restarts. They are chosen at materialization, so streams
    without them pay nothing. ``snapshot()`` shows them (see ``reactive.observe``).
    Without ``metrics`` the environment decides: ``REACTIVE_METRICS=1`` (or ``true``,
    ``yes``, ``on``) when the process starts switches them on for every materializer
    that does not pass ``metrics=False``.

    ``shutdown_timeout`` (seconds, default 10.0): how long ``shutdown()`` waits for the
    tasks that release resources (a Kafka client's close, a resource's ``create`` or
    ``close``, see ``spawn(..., cancel_on_shutdown=False)``) before it cancels them.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        fast_paths: bool | None = None,
        name: str = "materializer",
        input_buffer: int = 16,
        blocking_threshold: float | None = 1.0,
        metrics: bool | None = None,
        shutdown_timeout: float = 10.0,
    ) -> None:
        if not shutdown_timeout >= 0:
            raise ValueError(
                f"Materializer: shutdown_timeout must be >= 0 seconds, got {shutdown_timeout!r}"
            )
        if blocking_threshold is not None and not blocking_threshold > 0:
            raise ValueError(
                f"Materializer: blocking_threshold must be > 0 seconds or None, "
                f"got {blocking_threshold!r}"
            )
        self.name = name
        #: Seconds one interpreter run may hold the event loop before a warning (None: off).
        self.blocking_threshold = blocking_threshold
        self._blocking_warned = False
        self._clock = clock
        self.fast_paths = _FAST_DEFAULT if fast_paths is None else fast_paths
        self.input_buffer = input_buffer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # Tasks shutdown() waits for instead of cancelling them (spawn's
        # cancel_on_shutdown=False): they release resources.
        self._shielded: set[asyncio.Task[Any]] = set()
        #: Seconds ``shutdown()`` waits for the tasks that release resources.
        self.shutdown_timeout = shutdown_timeout
        self._islands: set[Island] = set()
        self._task_islands: dict[asyncio.Task[Any], Island] = {}
        self._shutdown = False
        self._counter = 0
        #: Per-stage counters for every stream started from now on (reactive.observe).
        self.metrics = _METRICS_DEFAULT if metrics is None else bool(metrics)
        # Graphs started here, for snapshots (reactive.observe): running ones and the
        # last few finished ones.
        self._graphs: list[Any] = []
        self._graph_counter = 0
        try:
            self._bind(asyncio.get_running_loop())
        except RuntimeError:
            pass

    # -- loop binding ------------------------------------------------------------------
    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        if self._clock is None:
            self._clock = LoopClock(loop)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop this materializer runs on."""
        if self._loop is None:
            self._bind(asyncio.get_running_loop())
        assert self._loop is not None
        return self._loop

    @property
    def clock(self) -> Clock:
        """The clock every timer of this materializer's streams uses."""
        if self._clock is None:
            self._bind(asyncio.get_running_loop())
        assert self._clock is not None
        return self._clock

    @staticmethod
    def default() -> Materializer:
        """The default materializer of the running event loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "no running event loop: run a stream (run(), run_with(), ...) from async "
                "code (inside asyncio.run(...)), or pass a Materializer made there"
            ) from None
        mat = _defaults.get(loop)
        if mat is None or mat._shutdown:
            mat = Materializer(name="default")
            _defaults[loop] = mat
        return mat

    # -- tasks ---------------------------------------------------------------------------
    def _spawn(
        self, coro: Coroutine[Any, Any, Any], island: Island | None = None
    ) -> asyncio.Task[Any]:
        task = self.loop.create_task(coro, name=f"{self.name}:{island.name if island else 'task'}")
        self._tasks.add(task)
        if island is not None:
            self._islands.add(island)
            self._task_islands[task] = island
        task.add_done_callback(self._task_done)
        return task

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, cancel_on_shutdown: bool = True
    ) -> asyncio.Task[Any]:
        """Start a helper task owned by this materializer, cancelled on shutdown; with
        ``cancel_on_shutdown=False`` (a task that releases a resource: closing a client,
        a file, a user's resource) ``shutdown()`` waits for it instead, up to
        ``shutdown_timeout`` seconds, and cancels it only then."""
        task = self._spawn(coro)
        if not cancel_on_shutdown:
            self._shielded.add(task)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._shielded.discard(task)
        if not task.cancelled():
            exc = task.exception()
            # KeyboardInterrupt / SystemExit a stage raised end the loop as asyncio makes
            # them (asyncio.run raises them); the island's streams were aborted naming it.
            if exc is not None and not isinstance(exc, (KeyboardInterrupt, SystemExit)):
                log.error("stream task %s failed", task.get_name(), exc_info=exc)
        island = self._task_islands.pop(task, None)
        if island is not None:
            self._islands.discard(island)

    @property
    def running_tasks(self) -> int:
        """How many tasks of this materializer are still running."""
        return sum(1 for t in self._tasks if not t.done())

    @property
    def is_shutdown(self) -> bool:
        """True once ``shutdown()`` was called."""
        return self._shutdown

    async def shutdown(self) -> None:
        """Abort every running stream (``AbruptTerminationError``) and wait for its tasks.

        Its tasks are cancelled, except those releasing resources (started with
        ``spawn(..., cancel_on_shutdown=False)``, also while the streams stop): those are
        waited for, at most ``shutdown_timeout`` seconds in all, then cancelled (logged
        as a WARNING naming them)."""
        self._shutdown = True
        for island in list(self._islands):
            if not island.finished:
                island.abort(None)
        deadline = self.loop.time() + self.shutdown_timeout
        cancelled: set[asyncio.Task[Any]] = set()
        yielded = False
        while True:
            # Waiting may start more of them (a resource's close once its create ended).
            tasks = [t for t in self._tasks if not t.done()]
            if not tasks:
                if self._tasks and not yielded:
                    # Done, but their done callbacks (which may spawn more: a process
                    # reaped once its start ended) not run yet: let them run, look again.
                    yielded = True
                    await asyncio.sleep(0)
                    continue
                break
            yielded = False
            for t in tasks:
                if t not in self._shielded and t not in cancelled:
                    cancelled.add(t)
                    t.cancel()
            left = deadline - self.loop.time()
            if left <= 0:
                late = [t for t in tasks if t not in cancelled]
                log.warning(
                    "materializer %r: shutdown cancels %d task(s) still releasing resources "
                    "after shutdown_timeout=%gs: %s",
                    self.name,
                    len(late),
                    self.shutdown_timeout,
                    ", ".join(t.get_name() for t in late),
                )
                for t in late:
                    cancelled.add(t)
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                continue
            await asyncio.wait(tasks, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        if _defaults.get(self.loop) is self:
            del _defaults[self.loop]

    def snapshot(self) -> Any:
        """A frozen view of the streams of this materializer: graphs, islands, stages,
        the state of every connection, buffer fill levels and, where metrics are on,
        the counters (``reactive.observe.MaterializerSnapshot``)."""
        from ..observe._snapshot import take_snapshot

        return take_snapshot(self)

    async def __aenter__(self) -> Self:
        self._bind(asyncio.get_running_loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    # -- materialization ---------------------------------------------------------------
    def materialize(
        self,
        module: Module,
        attributes: Attributes | None = None,
        *,
        into: Island | None = None,
        parent: Any = None,
    ) -> Any:
        """Materialize a closed blueprint and start it; returns its materialized value.

        ``into`` (internal, used for substreams) fuses the graph into that running island
        instead of giving it its own: a nested source then talks to its parent through
        the island's mailbox, not through a hop to another task (Akka's
        subFusingMaterializer). ``parent`` (internal): the running logic that
        materializes it, whose graph the nested one belongs to in snapshots and metrics.
        """
        if into is not None and (into.finished or not into.running):
            into = None
        if self._shutdown:
            raise MaterializerShutdownError(
                f"materializer {self.name!r} is shut down: trying to materialize a stream "
                "after the materializer has been shut down"
            )
        loop = self._loop
        if loop is None:
            loop = self.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not loop:
            raise IllegalGraphError(
                "run() must be called inside the running event loop the materializer is bound to"
            )
        if module.shape.inlets or module.shape.outlets:
            ports = ", ".join(p.name for p in (*module.shape.inlets, *module.shape.outlets))
            raise IllegalGraphError(f"cannot run a graph that is not closed: open ports {ports}")
        ctx = _Context(self, loop)
        if attributes is not None and attributes._items.keys() >= _DEFAULT_KEYS:
            # It sets every default itself (a nested graph's inherited attributes, see
            # ``materialize_nested``): merging the defaults under it changes nothing.
            base = attributes
        else:
            base = Attributes(
                {
                    "input_buffer": self.input_buffer,
                    "fast_paths": self.fast_paths,
                    "metrics": self.metrics,
                }
            )
            if attributes:
                base = base & attributes
        if into is not None:
            root = into
            ctx.fused_into = into
        else:
            root = ctx.new_island()
        own = module.attributes
        gname = own._items.get("name") if own is not _NO_ATTRIBUTES and own else None
        if gname is not None and into is None and not isinstance(module, AtomicModule):
            # A closed graph's name names the graph (snapshots, metrics), not its stages:
            # stages without a name of their own keep their default names (as in Akka,
            # where every built-in stage has one).
            kept = {k: v for k, v in module.attributes._items.items() if k != "name"}
            module = module.with_attributes(Attributes(kept))
        mat, _ = ctx.visit(module, base, root)
        ctx.finish()
        recorders = _recorders or _load_recorders()
        if parent is not None and recorders[1](parent, ctx.islands, ctx.logics):
            return mat
        if into is None:
            self._graph_counter += 1
            gname = gname or f"graph-{self._graph_counter}"
            recorders[0](self, str(gname), ctx.islands, ctx.logics)
        return mat

    def _next_name(self) -> str:
        self._counter += 1
        return f"island-{self._counter}"


# The attributes of a module that sets none (``Attributes.none()``, a singleton): tested
# by identity before asking an ``Attributes`` whether it is empty.
_NO_ATTRIBUTES = Attributes.none()

# The attributes every materialization sets (its defaults, from the materializer).
_DEFAULT_KEYS = frozenset({"input_buffer", "fast_paths", "metrics"})

# ``record_graph`` and ``record_substream`` of ``reactive.observe._snapshot``, imported on
# first use (importing the observe package here at module level would load it with the
# runtime); a function-local import statement costs as much as a small materialization
# step, once per substream.
_recorders: tuple[Any, Any] | None = None


def _load_recorders() -> tuple[Any, Any]:
    global _recorders
    from ..observe._snapshot import record_graph, record_substream

    _recorders = (record_graph, record_substream)
    return _recorders


class _Context:
    """The state of one materialization."""

    def __init__(self, mat: Materializer, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.mat = mat
        self.loop = mat.loop if loop is None else loop
        self.islands: list[Island] = []
        self.logics: list[Any] = []
        self.conns: list[Connection] = []
        self.fused_into: Island | None = None
        self.metered = False  # a connection carries counters (reactive.observe)

    def new_island(self) -> Island:
        isl = Island(self.mat, self.mat._next_name())
        self.islands.append(isl)
        return isl

    # -- walking -------------------------------------------------------------------------
    def visit(self, mod: Module, attrs: Attributes, island: Island) -> tuple[Any, dict[Any, Any]]:
        if isinstance(mod, AtomicModule):
            return self.visit_atomic(mod, attrs, island)
        if isinstance(mod, LinearModule):
            return self.visit_linear(mod, attrs, island)
        if isinstance(mod, CompositeModule):
            return self.visit_composite(mod, attrs, island)
        raise IllegalGraphError(f"unknown module {mod!r}")  # pragma: no cover

    def visit_atomic(
        self, mod: AtomicModule, attrs: Attributes, island: Island
    ) -> tuple[Any, dict[Any, Any]]:
        own = mod.attributes
        eff = attrs & own if own is not _NO_ATTRIBUTES and own else attrs
        if mod.is_async:
            island = self.new_island()
        stage = mod.stage
        try:
            made = stage.create_logic_and_materialized_value(eff)
        except PortStateError as exc:  # port actions in a logic's constructor
            name = eff.get("name") or getattr(stage, "name", None) or type(stage).__name__
            raise PortStateError(f"[{name}] {exc}") from None
        if type(made) is not tuple or len(made) != 2:
            raise IllegalGraphError(
                f"{type(stage).__name__}.create_logic_and_materialized_value returned "
                f"{made!r}, not a (logic, materialized value) pair"
            )
        logic, mat = made
        self.register(logic, eff, island, stage)
        ports: dict[Any, Any] = {}
        shape = mod.shape
        for i in shape.inlets:
            ports[i] = (logic, i)
        for o in shape.outlets:
            ports[o] = (logic, o)
        if mod.mat_post is not None:
            mat = mod.mat_post(mat)
        return mat, ports

    def register(self, logic: Any, eff: Attributes, island: Island, stage: Any = None) -> None:
        if not isinstance(logic, GraphStageLogic):
            raise IllegalGraphError(
                f"{type(stage).__name__}.create_logic returned {logic!r}, not a GraphStageLogic"
            )
        logic._attributes = eff
        name = eff._items.get("name") or getattr(stage, "name", None) or type(stage).__name__
        logic._stage_name = name
        logic._island = island
        logic._loop = self.loop
        logic._materializer = self.mat
        island.add_logic(logic)
        self.logics.append(logic)

    def visit_linear(
        self, mod: LinearModule, attrs: Attributes, island: Island
    ) -> tuple[Any, dict[Any, Any]]:
        prev = mod.prev
        nxt = mod.nxt
        if (
            type(prev) is AtomicModule
            and type(nxt) is AtomicModule
            and not (mod.is_async or prev.is_async or nxt.is_async)
            and prev.shape.outlets
            and getattr(prev.stage, "_fusable", None) is None
            and getattr(nxt.stage, "_fusable", None) is None
        ):
            return self._visit_pair(mod, prev, nxt, attrs, island)
        return self._visit_chain(mod, attrs, island)

    def _visit_chain(
        self, mod: LinearModule, attrs: Attributes, island: Island
    ) -> tuple[Any, dict[Any, Any]]:
        spine: list[LinearModule] = []
        m: Module = mod
        while isinstance(m, LinearModule):
            spine.append(m)
            m = m.prev
        # scopes[k]: attributes and island in force inside spine[k]
        scopes: list[tuple[Attributes, Island]] = []
        a, isl = attrs, island
        for node in spine:
            own = node.attributes
            if own is not _NO_ATTRIBUTES and own:
                a = a & own
            if node.is_async:
                isl = self.new_island()
            scopes.append((a, isl))
        a0, i0 = scopes[-1]
        # The fuser is made when a first operator joins a run (most chains of a source
        # into a sink have none).
        fusing = bool(a0._items.get("fast_paths") and self.mat.fast_paths)
        fuser: _Fuser | None = None
        ins: list[Any]
        if fusing and _fuses(m, a0):
            fuser = _Fuser(self)
            fuser.add(m, a0, i0, None)
            mat = _simple_mat(m)
            ins = []
            out_ep = None
        else:
            mat, ports = self.visit(m, a0, i0)
            shape = m.shape
            ins = [ports[p] for p in shape.inlets] if shape.inlets else []
            out_ep = ports[shape.outlets[0]] if shape.outlets else None
        for k in range(len(spine) - 1, -1, -1):
            node = spine[k]
            ak, ik = scopes[k]
            nxt = node.nxt
            if fusing and _fuses(nxt, ak):
                if fuser is None:
                    fuser = _Fuser(self)
                elif fuser.mods and ik is not fuser.island:
                    out_ep = self._flush(fuser, ins)
                fuser.add(nxt, ak, ik, out_ep)
                nmat = _simple_mat(nxt)
            else:
                if fuser is not None and fuser.mods:
                    out_ep = self._flush(fuser, ins)
                nmat, nports = self.visit(nxt, ak, ik)
                assert out_ep is not None
                self.connect(out_ep, nports[nxt.shape.inlets[0]])
                out_ep = nports[nxt.shape.outlets[0]] if nxt.shape.outlets else None
            mat = node.combine(mat, nmat)
            if node.mat_post is not None:
                mat = node.mat_post(mat)
        if fuser is not None and fuser.mods:
            out_ep = self._flush(fuser, ins)
        result_ports: dict[Any, Any] = {}
        for p, ep in zip(mod.shape.inlets, ins, strict=True):
            result_ports[p] = ep
        if mod.shape.outlets:
            result_ports[mod.shape.outlets[0]] = out_ep
        return mat, result_ports

    def _visit_pair(
        self,
        mod: LinearModule,
        prev: AtomicModule,
        nxt: AtomicModule,
        attrs: Attributes,
        island: Island,
    ) -> tuple[Any, dict[Any, Any]]:
        """``visit_linear`` of two stages in one island, neither of which fuses (a source
        into a sink: every substream of flat_map_merge): what the general walk does for
        them, without its lists of scopes and its fuser."""
        own = mod.attributes
        if own is not _NO_ATTRIBUTES and own:
            attrs = attrs & own
        mat, ports = self.visit_atomic(prev, attrs, island)
        nmat, nports = self.visit_atomic(nxt, attrs, island)
        self.connect(ports[prev.shape.outlets[0]], nports[nxt.shape.inlets[0]])
        mat = mod.combine(mat, nmat)
        if mod.mat_post is not None:
            mat = mod.mat_post(mat)
        result_ports: dict[Any, Any] = {}
        shape = mod.shape
        if shape.inlets:
            for p, q in zip(shape.inlets, prev.shape.inlets, strict=True):
                result_ports[p] = ports[q]
        if shape.outlets:
            outlets = nxt.shape.outlets
            result_ports[shape.outlets[0]] = nports[outlets[0]] if outlets else None
        return mat, result_ports

    def _flush(self, fuser: _Fuser, ins: list[Any]) -> Any:
        in_ep, out_ep = fuser.flush()
        if in_ep is not None:
            ins.append(in_ep)
        return out_ep

    def visit_composite(
        self, mod: CompositeModule, attrs: Attributes, island: Island
    ) -> tuple[Any, dict[Any, Any]]:
        eff = attrs & mod.attributes if mod.attributes else attrs
        if mod.is_async:
            island = self.new_island()
        mats: list[Any] = []
        sub_ports: list[dict[Any, Any]] = []
        feeds = {w[1]: w[0] for w in mod.wires} if self.mat.fast_paths else None
        for j, sub in enumerate(mod.subs):
            lone = self._visit_lone(sub, eff, island, feeds, j, sub_ports) if feeds else None
            smat, sports = self.visit(sub, eff, island) if lone is None else lone
            mats.append(smat)
            sub_ports.append(sports)
        for (i, outlet), (j, inlet) in mod.wires:
            self.connect(sub_ports[i][outlet], sub_ports[j][inlet])
        ports = {p: sub_ports[i][inner] for p, (i, inner) in mod.exposed.items()}
        mat = mod.mat_fn(mats)
        if mod.mat_post is not None:
            mat = mod.mat_post(mat)
        return mat, ports

    def _visit_lone(
        self,
        mod: Module,
        attrs: Attributes,
        island: Island,
        feeds: dict[Any, Any],
        j: int,
        sub_ports: list[dict[Any, Any]],
    ) -> tuple[Any, dict[Any, Any]] | None:
        """A lone simple operator of a graph (a junction's branch in the Graph DSL) whose
        upstream, materialized already, speaks the batch protocol: a fused chain of one, so
        batches flow through it. None when that is not the case (visit it as usual)."""
        if not isinstance(mod, AtomicModule) or getattr(mod.stage, "_fusable", None) is None:
            return None
        up = feeds.get((j, mod.shape.inlets[0]))
        if up is None or up[0] >= j:
            return None
        up_ep = sub_ports[up[0]][up[1]]
        if up_ep[1] not in getattr(up_ep[0], "_batch_out", ()):
            return None
        fuser = _Fuser(self)
        if not fuser.accepts(mod, attrs, island, lone=True):
            return None
        fuser.lone = True
        # The logic gets the module's own attributes too (an input_buffer set on it sizes
        # the boundary into it), as visit_atomic gives them.
        eff = attrs & mod.attributes if mod.attributes else attrs
        fuser.add(mod, eff, self.new_island() if mod.is_async else island, None)
        in_ep, out_ep = fuser.flush()
        return _simple_mat(mod), {mod.shape.inlets[0]: in_ep, mod.shape.outlets[0]: out_ep}

    # -- wiring --------------------------------------------------------------------------
    def connect(self, out_ep: tuple[Any, Any], in_ep: tuple[Any, Any]) -> None:
        ol, op = out_ep
        il, ip = in_ep
        if op in ol._conns:
            raise IllegalGraphError(f"[{ol._stage_name}] outlet {op.name!r} connected twice")
        if ip in il._conns:
            raise IllegalGraphError(f"[{il._stage_name}] inlet {ip.name!r} connected twice")
        if ol._island is il._island:
            self._direct(ol, op, il, ip)
        else:
            from .boundary import make_boundary

            make_boundary(self, ol, op, il, ip)

    def _direct(self, ol: Any, op: Any, il: Any, ip: Any) -> Connection:
        if ol._attributes._items.get("metrics") or il._attributes._items.get("metrics"):
            from ..observe._metering import MeteredConnection

            conn: Connection = MeteredConnection(ol, op, il, ip, self.mat.clock)
            self.metered = True
        else:
            conn = Connection(ol, op, il, ip)
        conn.q = ol._island.queue
        ol._conns[op] = conn
        il._conns[ip] = conn
        self.conns.append(conn)
        return conn

    def finish(self) -> None:
        for logic in self.logics:
            conns = logic._conns
            shape = logic.shape
            for port in shape.inlets:
                if port not in conns:
                    raise _unconnected(logic, port)
            for port in shape.outlets:
                if port not in conns:
                    raise _unconnected(logic, port)
            logic._wire_check()
        fast = self.mat.fast_paths
        for conn in self.conns:
            il = conn.in_logic
            ol = conn.out_logic
            ip = conn.in_port
            op = conn.out_port
            conn.in_handler = il._handlers[ip]
            conn.out_handler = ol._handlers[op]
            if (
                fast
                and op in getattr(ol, "_batch_out", ())
                and ip in getattr(il, "_batch_in", ())
                and il._attributes._items.get("fast_paths")
                and ol._attributes._items.get("fast_paths")
            ):
                conn.batch = True
        if self.metered:
            from ..observe._metering import instrument

            instrument(self.logics)
        for logic in self.logics:
            pending = logic._pending_callbacks
            if pending:
                logic._pending_callbacks = []
                for fn, arg in pending:
                    logic._island.mailbox.append((logic, fn, arg))
        for isl in self.islands:
            if isl.logics:
                isl.start()
        into = self.fused_into
        if into is not None:
            # The host island is running (we are inside one of its handlers): start the
            # new logics right here; their first events join the island's queue.
            into.start_logics([lg for lg in self.logics if lg._island is into])


def _unconnected(logic: Any, port: Any) -> IllegalGraphError:
    return IllegalGraphError(f"[{logic._stage_name}] port {port.name!r} is not connected")


def _fuses(mod: Module, attrs: Attributes, lone: bool = False) -> bool:
    """Whether ``mod`` joins a fused run (``_Fuser.accepts``)."""
    if not isinstance(mod, AtomicModule) or (mod.is_async and not lone):
        return False
    if getattr(mod.stage, "_fusable", None) is None:
        return False
    eff = attrs & mod.attributes if mod.attributes else attrs
    if mod.stage._fusable.kind == "scan" and eff.get("supervision") is not None:
        return False  # a supervised scan re-emits its zero on restart: its own logic does
    return bool(eff.get("fast_paths"))


def _simple_mat(mod: Module) -> Any:
    return NotUsed if mod.mat_post is None else mod.mat_post(NotUsed)


class _Fuser:
    """Collects a run of consecutive simple operators into one fused logic (fast path).

    A run of one operator is only fused when its upstream speaks the batch protocol;
    otherwise the plain stage is cheaper per element.
    """

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.mods: list[tuple[AtomicModule, Attributes]] = []
        self.island: Island | None = None
        self.up: Any = None
        # A run of one operator wired later to an upstream known to speak batches.
        self.lone = False

    @property
    def active(self) -> bool:
        return bool(self.mods)

    def accepts(self, mod: Module, attrs: Attributes, island: Island, lone: bool = False) -> bool:
        """Whether ``mod`` joins the run; a ``lone`` operator (a run of its own) may be
        async (it is then the only stage of its island)."""
        return _fuses(mod, attrs, lone)

    def add(self, mod: Module, attrs: Attributes, island: Island, up: Any) -> None:
        assert isinstance(mod, AtomicModule)
        if not self.mods:
            self.island = island
            self.up = up
        self.mods.append((mod, attrs))

    def flush(self) -> tuple[Any, Any]:
        """Materialize the run; returns (inlet endpoint if the run had no upstream, outlet)."""
        from .fused import FusedChain

        island = self.island
        assert island is not None
        mods, self.mods, self.island = self.mods, [], None
        up = self.up
        ctx = self.ctx
        up_batch = self.lone or (up is not None and up[1] in getattr(up[0], "_batch_out", ()))
        if len(mods) == 1 and not up_batch:
            mod, attrs = mods[0]
            _, ports = ctx.visit_atomic(mod, attrs, island)
            in_ep = ports[mod.shape.inlets[0]]
            if up is not None:
                ctx.connect(up, in_ep)
                in_ep = None
            return in_ep, ports[mod.shape.outlets[0]]
        ops = tuple(
            (mod.stage._fusable, attrs & mod.attributes if mod.attributes else attrs)
            for mod, attrs in mods
        )
        stage = FusedChain(ops)
        eff = mods[0][1]
        first = ops[0][1]
        if first.get("input_buffer") != eff.get("input_buffer"):
            # An input_buffer set on the first operator itself sizes the boundary into the
            # chain, as it does for the operator alone (visit_atomic, the lone path).
            eff = eff & Attributes({"input_buffer": first.get("input_buffer")})
        logic, _ = stage.create_logic_and_materialized_value(eff)
        ctx.register(logic, eff, island, stage)
        logic._stage_name = "+".join(str(a.get("name") or spec.kind) for spec, a in ops)
        in_ep = (logic, stage.shape.inlets[0])
        if up is not None:
            ctx.connect(up, in_ep)
            in_ep = None
        return in_ep, (logic, stage.shape.outlets[0])

"""The fused fast path: a run of simple operators compiled into one tight loop.

At materialization, consecutive ``map``/``filter``/``filter_not``/``scan``/``drop``/
``drop_while``/``zip_with_index`` stages in one island become a single ``FusedChain``
logic. Its body is generated Python (one ``for`` loop applying every operator to each
element), so a chain pays one loop iteration per element instead of several handler
calls per element per stage.

Batch protocol: on a connection whose two ends both declare it (``_batch_out`` /
``_batch_in``) the in side may request ``demand_n > 1`` elements with one pull, and the
out side may answer with one ``_Batch`` (a list of at most ``demand_n`` elements). Since
every fusable operator emits at most one element per input, a chain asked for ``n``
requests ``n`` upstream and never produces beyond demand.

Invariants kept (checked by the differential property tests against plain lists and
against the element-at-a-time stages): same order, ``scan`` emits its zero first (in
the same order the separate stages would), a raising user function emits the outputs
of earlier elements first and then fails (or resumes/restarts per that operator's
supervision decider, found from the traceback line of the generated code).

Errors name the operator, not the chain: a user function's exception reaches the user
unchanged (same type, same object) with a note naming the operator whose function raised
(``add_note``); a ``None`` output fails with a ``PortStateError`` naming the operator that
produced it and its port (``[map] ... (port 'Map.out', in the fused chain map+filter)``).
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

from .._checks import NONE_ELEMENT
from .._errors import NoneElementError, PortStateError
from .._stage.batch import (
    accept_hook,
    hand_over_hook,
    holds_no_none,
    keeps_last_only,
    lend_hook,
    note_unsent,
    settle_hook,
)
from .._stage.logic import (
    GraphStage,
    GraphStageLogic,
    InHandler,
    OutHandler,
    _Batch,
    apply_decider,
    note_function,
)
from .._stage.shapes import FlowShape, Inlet, Outlet
from .._supervision import Supervision
from .interpreter import DEMAND, IN_CLOSED, _as_failure

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["FusedChain"]

_PORT_PREFIX = {
    "map": "Map",
    "filter": "Filter",
    "filter_not": "Filter",
    "scan": "Scan",
    "drop": "Drop",
    "drop_while": "DropWhile",
    "zip_with_index": "ZipWithIndex",
}
"""The stage class (port prefix) of each fusable kind, for messages about one operator."""

_CACHE: dict[tuple[tuple[str, ...], int, bool, bool, bool], tuple[Any, dict[int, int]]] = {}

#: The kinds of operator that may emit nothing for an input (a chain holding one takes
#: lazily from an iterable source with room to spare: see ``_FusedLogic._serve``).
_DROPS = frozenset(("filter", "filter_not", "drop", "drop_while"))

#: The room below which ``_serve``'s fill takes wide from a lazy source (a chain that may drop
#: elements): at most 256, so that the bounded run counts its room in CPython's cached
#: small ints (a count above 256 allocates an int per output: ~1.5x the cost, measured).
_NARROW = 64

#: How many times the room left a wide take asks a lazy source for (``_serve``'s fill): the
#: source's iterator is read only as far as the bounded run goes.
_WIDE = 16


def _compile(
    kinds: tuple[str, ...],
    start: int,
    bounded: bool = False,
    trusted: bool = False,
    last: bool = False,
) -> tuple[Any, dict[int, int]]:
    """Generate ``make(fns) -> run(it, out, st)`` for ``kinds[start:]``.

    ``run`` returns ``3 + j`` when op ``j`` made ``None`` (not an element, RS rule 2.13;
    2: upstream handed one over); the outputs before it are in ``out``. Only ops that
    compute values (map, scan) can make one, so each of them is followed by the check,
    before the ops after it see the value: as the op's own stage, whose push refuses it
    (a filter after it must not drop it, a map after it must not be handed it).
    Scanning the output afterwards instead cost ~5% of B1. A ``bounded`` run takes one
    more argument, ``room``, and stops after that many outputs, leaving the rest of ``it``
    unread. A ``trusted`` run (``start`` 0) leaves out the check of what upstream hands
    over: its upstream holds no ``None`` (a range, see ``holds_no_none``). A ``last``
    run keeps only its last output, put in ``out`` when it returns (or raises): for a
    downstream that keeps only the last element anyway (``keeps_last_only``); the lines
    of its operators are those of the plain run.
    """
    key = (kinds, start, bounded, trusted, last)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    lines = ["def make(fns):"]
    n = len(kinds)
    for j in range(start, n):
        lines.append(f"    f{j} = fns[{j}]")
    # The functions are bound as default arguments: locals (LOAD_FAST) are ~5% faster
    # than closure cells in the per-element loop.
    fargs = "".join(f", f{j}=f{j}" for j in range(start, n))
    room = ", room" if bounded else ""
    # (``last``: the output kept; never None, as every output is checked to be no None)
    keep = ", last=None" if last else ""
    lines.append(f"    def run(it, out, st{room}{fargs}{keep}):")
    state_vars = []
    for j in range(start, n):
        k = kinds[j]
        if k in ("scan", "drop", "drop_while", "zip_with_index"):
            state_vars.append(j)
            lines.append(f"        s{j} = st[{j}]")
    lines.append("        try:")
    lines.append("            for x in it:")
    if start == 0:
        if not trusted:
            # What upstream hands over in batches is checked here (RS rule 2.13): a
            # single push of None is refused by push itself, a batch is not scanned on
            # its way.
            lines.append("                if x is None: return 2")
    elif kinds[start - 1] == "scan":
        # The run carries that scan's zero: a None zero is that scan's.
        lines.append(f"                if x is None: return {3 + start - 1}")
    linemap: dict[int, int] = {}
    for j in range(start, n):
        k = kinds[j]
        if k == "map":
            body = [f"x = f{j}(x)"]
        elif k == "filter":
            body = [f"if not f{j}(x): continue"]
        elif k == "filter_not":
            body = [f"if f{j}(x): continue"]
        elif k == "scan":
            body = [f"s{j} = f{j}(s{j}, x)", f"x = s{j}"]
        elif k == "drop":
            body = [f"if s{j} > 0:", f"    s{j} -= 1", "    continue"]
        elif k == "drop_while":
            body = [f"if s{j}:", f"    if f{j}(x): continue", f"    s{j} = False"]
        elif k == "zip_with_index":
            body = [f"x = (x, s{j})", f"s{j} += 1"]
        else:  # pragma: no cover - guarded by the materializer
            raise ValueError(f"not fusable: {k}")
        for b in body:
            lines.append("                " + b)
            linemap[len(lines)] = j
        if k in ("map", "scan"):
            lines.append(f"                if x is None: return {3 + j}")
    # ``out.append(x)``, not a bound ``append`` kept in a local: CPython 3.11 appends to
    # a list (``_Batch``) in place for the method call (measured: ~0.7% of B1).
    lines.append("                last = x" if last else "                out.append(x)")
    if bounded:
        lines.append("                room -= 1")
        lines.append("                if room <= 0: return False")
    lines.append("        finally:")
    for j in state_vars:
        lines.append(f"            st[{j}] = s{j}")
    if last:
        lines.append("            if last is not None: out.append(last)")
    elif not state_vars:
        lines.append("            pass")
    lines.append("    return run")
    src = "\n".join(lines)
    ns: dict[str, Any] = {}
    name = (
        f"<fused {'+'.join(kinds)}@{start}{' bounded' if bounded else ''}"
        f"{' trusted' if trusted else ''}{' last' if last else ''}>"
    )
    exec(compile(src, name, "exec"), ns)
    result = (ns["make"], linemap)
    _CACHE[key] = result
    return result


def _initial_state(spec: Any) -> Any:
    k = spec.kind
    if k == "scan":
        return spec.arg
    if k == "drop":
        return spec.arg
    if k == "drop_while":
        return True
    if k == "zip_with_index":
        return 0
    return None


class FusedChain(GraphStage[FlowShape]):
    """A run of fusable simple operators executed as one generated loop."""

    name = "fused"

    def __init__(self, ops: tuple[tuple[Any, Any], ...]) -> None:
        self.ops = ops
        self.shape = FlowShape(Inlet("Fused.in"), Outlet("Fused.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _FusedLogic(self.shape, self.ops)


class _FusedLogic(GraphStageLogic, InHandler, OutHandler):
    #: Asks upstream for what was asked of it (see ``_ops.simple.asks_in_batches``).
    _passes_demand_on = True

    def __init__(self, shape: FlowShape, ops: tuple[tuple[Any, Any], ...]) -> None:
        super().__init__(shape)
        self.in_ = shape.in_
        self.out = shape.out
        self.set_handlers(self.in_, self.out, self)
        self._batch_in = (self.in_,)
        self._batch_out = (self.out,)
        self.specs = [spec for spec, _ in ops]
        self.attrs = [a for _, a in ops]
        self.kinds = tuple(s.kind for s in self.specs)
        self.fns = [s.fn for s in self.specs]
        self.st = [_initial_state(s) for s in self.specs]
        self.runners: dict[int, tuple[Callable[..., None], dict[int, int]]] = {}
        # Behind an async boundary (``_lender``): its plain run, its bounded run and their
        # line map, made in ``pre_start`` (``_serve_lent`` reads them once per batch).
        self._lent_runs: tuple[Any, Any, dict[int, int]] | None = None
        # The runs of ``_serve``'s fill over what it takes (``_fill_runner``): the plain
        # run, its line map, the bounded run of a wide lazy take (or None), and whether the
        # plain run keeps only its last output, see there.
        self._filler: tuple[Any, dict[int, int], Any, bool] | None = None
        # scans whose zero is still to be emitted, last one first (as separate stages would)
        self.zeros = [j for j in range(len(self.kinds) - 1, -1, -1) if self.kinds[j] == "scan"]

    def _runner(self, start: int) -> tuple[Callable[..., None], dict[int, int]]:
        r = self.runners.get(start)
        if r is None:
            make, linemap = _compile(self.kinds, start)
            r = (make(self.fns), linemap)
            self.runners[start] = r
        return r

    def _run(self, it: Iterator[Any], out: list[Any], start: int) -> BaseException | None:
        """Run the chain from op ``start`` over ``it``; returns a stop-failure if any."""
        run, linemap = self.runners.get(start) or self._runner(start)
        return self._drive(run, linemap, it, out, 0, start)

    def _op_name(self, j: int) -> str:
        """The name of operator ``j`` as users know it (its ``named()`` name or kind)."""
        return str(self.attrs[j].get("name") or self.kinds[j])

    def _none_output(self, j: int) -> PortStateError:
        """Op ``j`` (a map or scan: its value, or a scan's zero a run carried) made None:
        the error its own stage's push gives."""
        port = f"{_PORT_PREFIX[self.kinds[j]]}.out"
        return NoneElementError(f"[{self._op_name(j)}] {NONE_ELEMENT} (port {port!r})")

    def _bad_output(self, r: int, start: int) -> BaseException:
        """The failure for what a run from op ``start`` returned: None from upstream
        (``r == 2``, named after the stage that emitted it) or from an operator."""
        if r == 2:
            # (read from the source's iterator: not sent, see ``note_unsent``)
            note_unsent(self._cin)
            name = self._cin.out_logic._stage_name
            return NoneElementError(f"[{name}] {NONE_ELEMENT}")
        return self._none_output(r - 3)

    @staticmethod
    def _raising_op(code: Any, linemap: dict[int, int], exc: BaseException) -> int:
        """The operator whose function raised ``exc`` in the generated ``code`` (the
        first frame of it on the traceback: an exception instance raised again keeps its
        earlier traceback entries after the new ones, so an inner match may be an older
        raise's); ``exc`` is re-raised if none did."""
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code is code:
                j = linemap.get(tb.tb_lineno)
                if j is None:
                    raise exc
                return j
            tb = tb.tb_next
        raise exc

    def _drive(
        self,
        run: Any,
        linemap: dict[int, int],
        it: Iterator[Any],
        out: list[Any],
        limit: int,
        start: int,
        failed: BaseException | None = None,
        res: int = 0,
    ) -> BaseException | None:
        """Call a generated ``run`` (bounded when ``limit``), applying supervision.

        ``failed``: the exception a first call of ``run`` made by the caller itself raised
        (the fast path, see ``_serve``), or ``res``: what that call returned (a None met);
        it is handled first, as if met here. An ``asyncio.CancelledError`` an operator's
        function raised fails that operator as its own stage's handler would
        (``_as_failure``: an ``AsyncCallCancelledError`` naming it, decided on)."""
        while True:
            if failed is None and not res:
                try:
                    res = (
                        run(it, out, self.st, limit - len(out))
                        if limit > 0
                        else run(it, out, self.st)
                    )
                except (Exception, asyncio.CancelledError) as e:
                    failed = e
                else:
                    if not res:
                        return None
            if failed is None:
                if res - 3 < start:  # upstream's None, or the zero the run carried
                    return self._bad_output(res, start)
                # Op j's function returned None: its failure, decided on as Akka decides
                # on the NullPointerException its ``push(out, null)`` throws.
                j = res - 3
                exc: Exception = self._none_output(j)
                res = 0
            else:
                # (the operator from the traceback of what it raised, before ``_as_failure``)
                j = self._raising_op(run.__code__, linemap, failed)
                exc = _as_failure(self, failed, self._op_name(j))
                failed = None
            directive = apply_decider(self.attrs[j].get("supervision"), exc)
            # Counted as the operator's own stage counts it (a scan re-emits its zero on a
            # restart instead of resuming).
            self._count_decided(directive, self.kinds[j] != "scan")
            if directive is Supervision.resume:
                continue
            if directive is Supervision.restart:
                self.st[j] = _initial_state(self.specs[j])
                continue
            # The user's exception stays as it is (type and object); a note says which
            # operator's function raised it, since the traceback shows only the
            # generated ``<fused ...>`` code. (A None's error names the operator.)
            if type(exc) is not NoneElementError:
                note_function(exc, self.kinds[j], self._op_name(j))
            return exc

    def _emit_out(self, out: list[Any], exc: BaseException | None) -> bool:
        """Push ``out`` (fits demand); then fail on ``exc``. True if something was pushed."""
        if out:
            c = self._conns[self.out]
            if len(out) == 1 or not c.batch:
                if len(out) == 1:
                    self.push(self.out, out[0])
                else:  # only from zeros on completion; cannot happen with demand 1
                    self.emit_multiple(self.out, out)
            else:
                # ``out`` is already a _Batch when it comes from on_push (no copy).
                self.push(self.out, out if type(out) is _Batch else _Batch(out))
        if exc is not None:
            self.fail_stage(exc)
        return bool(out)

    def _emit_zeros(self) -> bool:
        """Emit pending scan zeros one by one; True if one was pushed (or we failed)."""
        while self.zeros:
            j = self.zeros.pop(0)
            out: list[Any] = []
            exc = self._run(iter((self.specs[j].arg,)), out, j + 1)
            if out or exc is not None:
                self._emit_out(out, exc)
                return True
        return False

    def pre_start(self) -> None:
        cin = self._conns[self.in_]
        cout = self._conns[self.out]
        self._cin = cin
        self._cout = cout
        # Synchronous shortcuts of the batch protocol with neighbours that offer them (an
        # async boundary's two halves, an iterable source): ``take(n)`` stands for one
        # pull -> on_pull -> push -> on_push round trip on an idle in-connection, and
        # ``give(batch)`` for push -> on_push -> grab -> pull on a pulled out-connection.
        # Only elements move; the connections' states end as the round trips leave them.
        self._take_up: Any = hand_over_hook(cin.out_logic, cin) if cin.batch else None
        self._give_down: Any = accept_hook(cout.in_logic) if cout.batch else None
        self._settle_up: Any = settle_hook(cin.out_logic, cin) if cin.batch else None
        # An async boundary also lends its whole buffer: a bounded run reads it until the
        # demand is met (a filter then needs one pass, not one per shrinking remainder).
        self._lend_up: Any = lend_hook(cin.out_logic) if cin.batch else None
        self._lender: Any = cin.out_logic if self._lend_up is not None else None
        if self._lender is not None:
            run, linemap = self._runner(0)
            make, wide_linemap = _compile(self.kinds, 0, True)
            # (the bounded run's lines are the plain run's, its count of room after them)
            assert wide_linemap == linemap
            self._lent_runs = (run, make(self.fns), linemap)

    def _fill_runner(self) -> tuple[Any, dict[int, int], Any, bool]:
        """The runs ``_serve``'s fill makes over what it takes, made once: the plain run, its line
        map, the bounded run of a wide take (or None), and whether the plain run keeps
        only its last output.

        Trusted (no check of each element handed over) when upstream holds no ``None``.
        When upstream's take is lazy (an iterable source) and an operator may drop
        elements, a take of just the room left comes back short, the next one shorter
        still (some 20 takes for a batch behind a filter passing a third); once the room
        is below ``_NARROW``, the fill asks for ``_WIDE`` times the room and runs bounded
        by the room, leaving the rest unread in the source's iterator (the same elements
        are read). Either way no more comes out than the room.

        Downstream keeping only the last element of what it is pushed (``Sink.last``,
        on a connection no metrics count elements on: ``keeps_last_only``), the run
        keeps only its last output: the batch pushed is that one element, standing for
        the outputs of one take of at most the room (never more than the demand), and
        none of them is held in a list on the way."""
        trusted = holds_no_none(self._cin.out_logic)
        cout = self._cout
        last = bool(cout.batch and not cout.metered and keeps_last_only(cout.in_logic))
        make, linemap = _compile(self.kinds, 0, False, trusted, last)
        wide: Any = None
        if not last and self._settle_up is not None and not _DROPS.isdisjoint(self.kinds):
            make_wide, wide_linemap = _compile(self.kinds, 0, True, trusted)
            # (the bounded run's lines are the plain run's, its count of room after them)
            assert wide_linemap == linemap
            wide = make_wide(self.fns)
        filler = self._filler = (make(self.fns), linemap, wide, last)
        return filler

    def _serve(self, out: list[Any] | None = None) -> None:
        """Answer downstream's demand with ``out`` and what upstream hands over right now
        (behind an async boundary, ``_lender``: ``_serve_lent``).

        Each pass first tops ``out`` up towards the demand ``n`` with elements taken from
        upstream right now (the fill), when there is room and the in-connection is idle
        (state 0) and its out side hands elements over. Every op emits at most one
        element per input, so taking ``n - len(out)`` more inputs can never produce
        beyond the demand of ``n``. From a lazy upstream (an iterable source) a chain that
        may drop elements takes wide once the room is small, and runs bounded by the
        room; a run that keeps only its last output ends the fill with the first take
        that gave one (``_fill_runner``). A connection's state is read as little as
        possible there."""
        if self._lender is not None:
            self._serve_lent(out)
            return
        if out is None:
            out = _Batch()
        cin: Any = self._cin  # (Any: a ``MeteredConnection`` when metered)
        cout = self._cout
        take = self._take_up
        give = self._give_down
        pulled = False  # known: the out-connection is exactly DEMAND (read after a give)
        while True:
            n = cout.demand_n if cout.batch else 1
            exc: BaseException | None = None
            if take is not None and len(out) < n and cin.state == 0:
                # The fill (once per batch: spelled out here, no call).
                settle = self._settle_up
                run, linemap, wide, last = self._filler or self._fill_runner()
                full = len(out) + 1 if last else n
                while True:
                    room = n - len(out)
                    bounded = wide is not None and room < _NARROW
                    more = take(room * _WIDE if bounded else room)
                    if not more:
                        break
                    if cin.metered:  # a take: one pull and one push, counted here
                        cin.takes += 1  # (reactive.observe)
                    it = iter(more) if settle is None else more
                    # ``_drive`` inlined for the common case.
                    try:
                        try:
                            if bounded:
                                r = wide
                                res = r(it, out, self.st, room)
                            else:
                                r = run
                                res = r(it, out, self.st)
                        except (Exception, asyncio.CancelledError) as e:
                            # (re-raised when not from our generated code: an upstream
                            # failure)
                            exc = self._drive(r, linemap, it, out, n if bounded else 0, 0, e)
                        else:
                            if res:
                                exc = self._drive(
                                    r, linemap, it, out, n if bounded else 0, 0, res=res
                                )
                    except (Exception, asyncio.CancelledError) as up_exc:
                        if settle is None:
                            raise
                        # A lazy take: the upstream's own iterator runs inside our loop,
                        # so what it raises is the upstream's failure, not ours.
                        settle(_as_failure(cin.out_logic, up_exc))
                        break
                    if settle is not None:
                        settle(None)
                    if exc is not None or len(out) >= full or cin.state != 0:
                        break
            if not out:
                if exc is not None:
                    self.fail_stage(exc)
                elif not cin.state & IN_CLOSED:
                    self._request()
                return
            if give is None or exc is not None or not (pulled or cout.state == DEMAND):
                self._emit_out(out, exc)
                return
            give(out)  # leaves DEMAND set (with a new demand_n) when it wants more
            if cout.state != DEMAND:
                return
            pulled = True
            out = _Batch()

    def _serve_lent(self, out: list[Any] | None = None) -> None:
        """``_serve`` for a chain behind an async boundary (``_lender`` set): the same
        passes, with what cannot change during a run read once (the runs, the hooks).

        Each pass reads the boundary's buffer (what ``_lend()`` returns, read directly:
        once per hop) with one run: the plain run when all of it fits the demand left,
        else the run bounded by the room; ``_lent`` then says how much it used.
        ``_drive`` takes over only when the run raised (supervision) or met a None."""
        lender = self._lender  # (never None here: see ``_resume_pulled``, ``_serve``)
        if out is None:
            out = _Batch()
        cin: Any = self._cin  # (Any: a ``MeteredConnection`` when metered)
        cout = self._cout
        give = self._give_down
        run, wide, linemap = self._lent_runs  # type: ignore[misc]
        st = self.st
        pulled = False  # known: the out-connection is exactly DEMAND (read after a give)
        while True:
            exc: BaseException | None = None
            buf = lender.buffer
            if buf and cin.state == 0:
                n = cout.demand_n if cout.batch else 1
                room = n - len(out)
                if room > 0:
                    it = iter(buf)
                    if len(buf) <= room:
                        # All of it fits the demand: the plain run, no count of room; run
                        # to its end it used the whole buffer.
                        try:
                            res = run(it, out, st)
                            if res:
                                exc = self._drive(run, linemap, it, out, 0, 0, res=res)
                                k = len(buf) - it.__length_hint__()
                            else:
                                k = len(buf)
                        except (Exception, asyncio.CancelledError) as e:
                            exc = self._drive(run, linemap, it, out, 0, 0, e)
                            k = len(buf) - it.__length_hint__()
                    else:
                        try:
                            res = wide(it, out, st, room)
                            if res:
                                exc = self._drive(wide, linemap, it, out, n, 0, res=res)
                        except (Exception, asyncio.CancelledError) as e:
                            exc = self._drive(wide, linemap, it, out, n, 0, e)
                        k = len(buf) - it.__length_hint__()
                    lender._lent(k)
            if not out:
                if exc is not None:
                    self.fail_stage(exc)
                elif not cin.state & IN_CLOSED:
                    self._request()
                return
            if exc is not None or give is None or not (pulled or cout.state == DEMAND):
                self._emit_out(out, exc)
                return
            give(out)  # leaves DEMAND set (with a new demand_n) when it wants more
            if cout.state != DEMAND:
                return
            if not lender.buffer and cin.state == 0:
                # What the next pass ends with: nothing buffered, so ask the boundary for
                # more (``_request``'s pull delivered at once, spelled out).
                cin.state = DEMAND
                if cin.metered:  # that pull, counted here (reactive.observe: ``pulled``;
                    # idle before: its state was 0)
                    now = cin.now  # (called as a local: no method lookup on a slot)
                    cin.phase = 1
                    cin.pend -= now()
                    cin.pulls += 1
                cin.demand_n = cout.demand_n  # (both connections batch: see pre_start)
                return
            pulled = True
            out = _Batch()

    #: What an async boundary upstream calls when it answered our pull and now holds
    #: elements (``_serve_lent`` itself: no call in between). Only a boundary's output
    #: half calls it, on a batch connection: the chain then has it as its ``_lender``.
    _resume_pulled = _serve_lent

    #: ``_serve``'s fill counts the hand-overs it takes on a metered in-connection itself
    #: (reactive.observe's ``instrument`` then wraps no hook of the logic upstream).
    _counts_takes = True

    def on_pull(self) -> None:
        if self.zeros and self._emit_zeros():
            return
        cin: Any = self._cin  # (Any: a ``MeteredConnection`` when metered)
        lender = self._lender
        if lender is not None and cin.state == 0 and not lender.buffer:
            # Behind an async boundary with nothing buffered (the chain waits for the
            # boundary's next batch): what ``_serve`` would end with, ``_request``'s pull
            # delivered at once (see there).
            cin.state = DEMAND
            if cin.metered:  # that pull, counted here (reactive.observe; idle before:
                # its state was 0; ``pulled`` spelled out)
                now = cin.now
                cin.phase = 1
                cin.pend -= now()
                cin.pulls += 1
            cout = self._cout
            cin.demand_n = cout.demand_n if cout.batch else 1
            return
        if cin.state & IN_CLOSED:
            self.complete_stage()
            return
        if lender is not None:
            self._serve_lent(_Batch())
        elif self._take_up is not None:
            self._serve(_Batch())
        else:
            self._request()

    def _request(self) -> None:
        cin: Any = self._cin  # (Any: a ``MeteredConnection`` when metered)
        if self._lend_up is not None and cin.state == 0 and not cin.out_logic.buffer:
            # An async boundary with nothing buffered: its ``on_pull`` would do nothing,
            # so deliver the pull now (PULL_REQ -> DEMAND) instead of queueing an event
            # for it; its next batch then finds us waiting (``_resume_pulled``).
            cin.state = DEMAND
            if cin.metered:  # that pull, counted here (reactive.observe: ``pulled``;
                # idle before: its state was 0)
                now = cin.now  # (called as a local: no method lookup on a slot)
                cin.phase = 1
                cin.pend -= now()
                cin.pulls += 1
        else:
            self.pull(self.in_)
        if cin.batch:
            cout = self._cout
            cin.demand_n = cout.demand_n if cout.batch else 1

    def on_push(self) -> None:
        c = self._cin
        if c.state == 8:  # AVAIL and nothing else: ``grab``'s common case spelled out
            x = c.elem
            c.elem = None
            c.state = 0
        else:
            x = self.grab(self.in_)
        out: list[Any] = _Batch()
        it = iter(x) if type(x) is _Batch else iter((x,))
        r = self.runners.get(0) or self._runner(0)
        # ``_run(it, out, 0)`` spelled out: the generated run; ``_drive`` only for a
        # failure it raised or a None it met.
        try:
            res = r[0](it, out, self.st)
        except (Exception, asyncio.CancelledError) as e:
            exc = self._drive(r[0], r[1], it, out, 0, 0, e)
        else:
            exc = self._drive(r[0], r[1], it, out, 0, 0, res=res) if res else None
        if exc is not None:
            self._emit_out(out, exc)
        elif self._take_up is None and self._give_down is None:
            # ``_serve(out)`` with no shortcut of a neighbour: its only pass, spelled out.
            if not out:
                if not c.state & IN_CLOSED:
                    self._request()
            elif len(out) == 1:
                self.push(self.out, out[0])
            else:
                self._emit_out(out, None)
        else:
            self._serve(out)

    def on_upstream_finish(self) -> None:
        if self.zeros:
            results: list[Any] = []
            while self.zeros:
                j = self.zeros.pop(0)
                exc = self._run(iter((self.specs[j].arg,)), results, j + 1)
                if exc is not None:
                    self.emit_multiple(self.out, results, functools.partial(self.fail_stage, exc))
                    return
            self.emit_multiple(self.out, results, self.complete_stage)
        else:
            self.complete_stage()

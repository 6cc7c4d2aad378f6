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
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from .._stage.logic import GraphStage, GraphStageLogic, InHandler, OutHandler, _Batch
from .._stage.shapes import FlowShape, Inlet, Outlet
from .._supervision import Supervision

__all__ = ["FusedChain"]

_CACHE: dict[tuple[tuple[str, ...], int], tuple[Any, dict[int, int]]] = {}


def _compile(kinds: tuple[str, ...], start: int) -> tuple[Any, dict[int, int]]:
    """Generate ``make(fns) -> run(it, out, st)`` for ``kinds[start:]``."""
    key = (kinds, start)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    lines = ["def make(fns):"]
    n = len(kinds)
    for j in range(start, n):
        lines.append(f"    f{j} = fns[{j}]")
    lines.append("    def run(it, out, st):")
    lines.append("        ap = out.append")
    state_vars = []
    for j in range(start, n):
        k = kinds[j]
        if k in ("scan", "drop", "drop_while", "zip_with_index"):
            state_vars.append(j)
            lines.append(f"        s{j} = st[{j}]")
    lines.append("        try:")
    lines.append("            for x in it:")
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
    lines.append("                ap(x)")
    lines.append("        finally:")
    if state_vars:
        for j in state_vars:
            lines.append(f"            st[{j}] = s{j}")
    else:
        lines.append("            pass")
    lines.append("    return run")
    src = "\n".join(lines)
    ns: dict[str, Any] = {}
    exec(compile(src, f"<fused {'+'.join(kinds)}@{start}>", "exec"), ns)  # noqa: S102
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
        run, linemap = self._runner(start)
        code = run.__code__
        while True:
            try:
                run(it, out, self.st)
                return None
            except Exception as exc:
                j = None
                tb = exc.__traceback__
                while tb is not None:
                    if tb.tb_frame.f_code is code:
                        j = linemap.get(tb.tb_lineno)
                    tb = tb.tb_next
                if j is None:
                    raise
                decider = self.attrs[j].get("supervision")
                directive = Supervision.stop if decider is None else decider(exc)
                if directive is Supervision.resume:
                    continue
                if directive is Supervision.restart:
                    self.st[j] = _initial_state(self.specs[j])
                    continue
                return exc

    def _emit_out(self, out: list[Any], exc: BaseException | None) -> bool:
        """Push ``out`` (fits demand); then fail on ``exc``. True if something was pushed."""
        if out and None in out:
            # Same contract as push(): None is not an element. Emit what came before it.
            k = next((i for i, y in enumerate(out) if y is None), None)
            if k is not None:
                del out[k:]
                exc = self._err(
                    self.out, "Cannot push None: elements must not be None (RS rule 2.13)"
                )
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

    def on_pull(self) -> None:
        if self.zeros and self._emit_zeros():
            return
        if self.is_closed(self.in_):
            self.complete_stage()
            return
        self._request()

    def _request(self) -> None:
        cin = self._conns[self.in_]
        self.pull(self.in_)
        if cin.batch:
            cout = self._conns[self.out]
            n = cout.demand_n if cout.batch else 1
            cin.demand_n = n

    def on_push(self) -> None:
        x = self.grab(self.in_)
        out: list[Any] = _Batch()
        exc = self._run(iter(x) if type(x) is _Batch else iter((x,)), out, 0)
        if not self._emit_out(out, exc) and exc is None:
            self._request()

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

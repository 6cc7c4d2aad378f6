"""The worker pool's ceilings: ``Balance(2) -> 2 x map_async(1) -> Merge(2) -> fold`` as
the protocol with nothing else, in plain CPython on asyncio (the ``graph_balance_pool``
row's "limit" systems; ``benchmarks/handler_ceiling.py`` does the same for B3).

Both run ``sleep0`` (one yield to the event loop per call) on two long-lived worker tasks,
as ``map_async(1)`` does, and sum the results; neither has state checks, error handling,
supervision, completion or cancellation, an island or a blocked-loop watch.

``bare_pool_queued``
    The handler protocol: source, Balance, two workers, Merge and fold are bare handler
    objects whose port actions append the connection to one FIFO; a worker's result
    runs that queue (its push to the Merge, the Merge's push to the fold, the fold's
    pull, the Merge's pull of the worker, the worker's pull of Balance, Balance's pull
    of the source, and back with the next element, which becomes the worker's next
    call). The ceiling of a runtime that dispatches every port action as an event.

``bare_pool_direct``
    The shortcuts the fast paths take (a result handed straight to the fold, the next
    element taken straight from the source through Balance): each worker, when its call
    returns, adds the result and takes the next element of the shared iterator. No
    runtime keeping the graph's stages apart can do less.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from benchmarks.workloads import add, sleep0

PUSH, PULL = 4, 1


class _Conn:
    __slots__ = ("state", "elem", "up", "down", "q")

    def __init__(self, up: Any, down: Any, q: deque[Any]) -> None:
        self.state = 0
        self.elem: Any = None
        self.up = up
        self.down = down
        self.q = q


class _Logic:
    """Bare port actions: flip the state, queue the connection (no checks)."""

    def push(self, c: _Conn, elem: Any) -> None:
        c.elem = elem
        c.state = PUSH
        c.q.append(c)

    def pull(self, c: _Conn) -> None:
        c.state = PULL
        c.q.append(c)

    def grab(self, c: _Conn) -> Any:
        x = c.elem
        c.elem = None
        c.state = 0
        return x


class _Source(_Logic):
    out: _Conn

    def __init__(self, n: int) -> None:
        self.it = iter(range(n))
        self.done = False
        self.workers: list[_Worker] = []

    def on_pull(self, c: _Conn) -> None:
        x = next(self.it, None)
        if x is not None:
            self.push(self.out, x)
            return
        self.done = True  # (completion, bare: parked workers wake up and end)
        for w in self.workers:
            w.wake_up()


class _Balance(_Logic):
    """Outputs that pulled wait in line; upstream is pulled while some wait."""

    in_: _Conn
    outs: list[_Conn]

    def __init__(self) -> None:
        self.line: deque[_Conn] = deque()

    def on_pull(self, c: _Conn) -> None:
        self.line.append(c)
        if self.in_.state == 0:
            self.pull(self.in_)

    def on_push(self, c: _Conn) -> None:
        self.push(self.line.popleft(), self.grab(c))
        if self.line:
            self.pull(self.in_)


class _Worker(_Logic):
    """``map_async(1)``: an element starts a call that the worker task awaits."""

    in_: _Conn
    out: _Conn

    def __init__(self) -> None:
        self.todo: deque[Any] = deque()
        self.wake: asyncio.Future[None] | None = None

    def on_push(self, c: _Conn) -> None:
        self.todo.append(sleep0(self.grab(c)))
        self.wake_up()

    def wake_up(self) -> None:
        w = self.wake
        if w is not None:
            self.wake = None
            w.set_result(None)

    def on_pull(self, c: _Conn) -> None:
        self.pull(self.in_)


class _Merge(_Logic):
    out: _Conn

    def __init__(self) -> None:
        self.ready: deque[_Conn] = deque()

    def on_push(self, c: _Conn) -> None:
        if self.out.state == 2 and not self.ready:
            self.out.state = 0
            self.push(self.out, self.grab(c))
            self.pull(c)
        else:
            self.ready.append(c)

    def on_pull(self, c: _Conn) -> None:
        c.state = 2  # demand noted
        if self.ready:
            i = self.ready.popleft()
            c.state = 0
            self.push(c, self.grab(i))
            self.pull(i)


class _Fold(_Logic):
    in_: _Conn

    def __init__(self) -> None:
        self.acc = 0

    def on_push(self, c: _Conn) -> None:
        self.acc = add(self.acc, self.grab(c))
        self.pull(c)


def _drain(q: deque[Any]) -> None:
    pop = q.popleft
    while q:
        c = pop()
        if c.state == PUSH:
            c.down.on_push(c)
        else:
            c.up.on_pull(c)


async def bare_pool_queued(n: int) -> int:
    """The pool as bare handlers dispatched from one FIFO (see the module)."""
    q: deque[Any] = deque()
    src, bal, merge, fold = _Source(n), _Balance(), _Merge(), _Fold()
    workers = src.workers = [_Worker(), _Worker()]
    bal.in_ = src.out = _Conn(src, bal, q)
    bal.outs = []
    for w in workers:
        w.in_ = _Conn(bal, w, q)
        bal.outs.append(w.in_)
        w.out = _Conn(w, merge, q)
    merge.out = fold.in_ = _Conn(merge, fold, q)
    fold.pull(fold.in_)
    for w in workers:
        merge.pull(w.out)
    _drain(q)
    loop = asyncio.get_running_loop()

    async def work(w: _Worker) -> None:
        todo = w.todo
        while True:
            while todo:
                r = await todo.popleft()
                w.push(w.out, r)
                _drain(q)
            if src.done:
                return
            w.wake = loop.create_future()
            await w.wake

    await asyncio.gather(*(work(w) for w in workers))
    return fold.acc


async def bare_pool_direct(n: int) -> int:
    """Two worker tasks taking the next element of a shared iterator as their call
    returns, adding each result (see the module)."""
    it = iter(range(n))
    totals = [0, 0]

    async def work(i: int) -> None:
        for x in it:
            r = await sleep0(x)
            totals[i] = add(totals[i], r)

    await asyncio.gather(work(0), work(1))
    return totals[0] + totals[1]

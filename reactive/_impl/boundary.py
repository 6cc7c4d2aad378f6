"""Async boundaries: bounded, batched hand-over between two islands.

The downstream side (``_BoundaryOut``, in the consuming island) owns a buffer of
``input_buffer`` elements (default 16). It requests the whole buffer at start and
re-requests in halves as elements leave it (windowed, batched demand, as Akka does).
The upstream side (``_BoundaryIn``, in the producing island) pulls only while it holds
demand, collects elements and hands them over as one batch at the end of its island's
burst (a flush hook), so a hop costs one signal per batch, not per element.

Direct hops (fast path): the hand-over (``_BoundaryIn.flush``) and the re-request
(``_BoundaryOut._demand_peer``) are the hot signals, once per batch each. When the other
island is parked with nothing queued and none of its handlers on the stack, they run its
handler themselves: ``Island.signal``'s direct run nested in another island's run,
spelled out (the same conditions, the same bookkeeping after it: ``_after_nested_run``),
the hand-over spells out ``_BoundaryOut.on_elements`` for a fused chain waiting
downstream, and the re-request spells out ``_BoundaryIn.on_demand`` for what it then
knows. Otherwise they signal (a re-request to a producer island on the stack goes
straight to its mailbox, as ``signal`` would put it there).

In flight between the two islands: at most ``input_buffer`` elements, ever.
Failure overtakes buffered elements (the buffer is dropped), as in Akka.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .._stage.batch import offer_hook
from .._stage.logic import GraphStageLogic, InHandler, OutHandler, _Batch
from .._stage.shapes import Inlet, Outlet, SinkShape, SourceShape
from .interpreter import AVAIL, DEMAND, IN_CLOSED, OUT_CLOSED, PULL_REQ, PULLED, _as_failure

__all__ = ["make_boundary"]

#: ``on_elements``'s first test: the outlet open and pulled (one global, not two and an or).
_DEMAND_OPEN = DEMAND | OUT_CLOSED


class _BoundaryIn(GraphStageLogic, InHandler):
    """Upstream half: a sink in the producing island."""

    def __init__(self) -> None:
        self.in_: Inlet[Any] = Inlet("async.in")
        super().__init__(SinkShape(self.in_))
        self.set_handler(self.in_, self)
        self._batch_in = (self.in_,)
        self.peer: _BoundaryOut | None = None
        # The inlet's connection (make_boundary, once it is wired), read per batch.
        self._cin: Any = None
        self.demand = 0
        # Elements taken for the hand-over. Not empty only with the flush hook scheduled:
        # whoever fills it from empty schedules the hook (no flag to keep in step).
        self.pending: list[Any] = []
        self._flush = self.flush  # the flush hook, bound once (scheduled once per batch)
        # ``peer._island.signal`` and ``peer.on_elements``, bound once (make_boundary):
        # the hand-over is the hot signal, once per batch.
        self._signal_peer: Any = None
        self._peer_elements: Any = None
        self._peer_island: Any = None  # ``peer._island`` (make_boundary): the direct hop
        self._sched: Any = None  # ``peer._island.sched`` (make_boundary), read per batch

    def _pull_more(self) -> None:
        c = self._cin
        if self.demand > 0 and not c.state & (PULLED | IN_CLOSED):
            self.pull(self.in_)
            if c.batch:
                c.demand_n = self.demand

    def on_demand(self, n: int) -> None:
        demand = self.demand = self.demand + n
        c: Any = self._cin  # (a ``MeteredConnection`` when metered)
        island = self._island
        if c.state == 0 and island is not None and not island.queue:
            # Idle connection, empty event queue: the pull would be the next event, so
            # deliver it now (one queue round trip less per batch).
            c.state = DEMAND
            if c.metered:  # that pull, counted here (reactive.observe: ``pulled``;
                # idle before: its state was 0)
                now = c.now  # (called as a local: no method lookup on a slot)
                c.phase = 1
                c.pend -= now()
                c.pulls += 1
            if c.batch:
                c.demand_n = demand
            try:
                c.out_handler.on_pull()
            except (Exception, asyncio.CancelledError) as exc:
                c.out_logic._handle_error(_as_failure(c.out_logic, exc))
            return
        self._pull_more()

    def on_push(self) -> None:
        c = self._cin
        x = self.grab(self.in_)
        self._collect(x if type(x) is _Batch else [x])
        if self.demand > 0:
            self.pull(self.in_)
            if c.batch:
                c.demand_n = self.demand

    def _collect(self, batch: list[Any]) -> None:
        """Keep elements for the hand-over at the end of the island's burst."""
        self.demand -= len(batch)
        if self.pending:
            self.pending.extend(batch)
        else:
            self.pending = batch
            island = self._island
            assert island is not None
            island.flush_hooks.append(self._flush)

    def _give(self, batch: list[Any]) -> None:
        """Take a batch from the fused chain upstream synchronously (see fused.py).

        Stands for push -> on_push -> grab -> pull: with demand left the connection stays
        pulled (``DEMAND``, new ``demand_n``), otherwise it ends idle. The chain gives only
        on a connection whose state is exactly ``DEMAND``, so idle is 0 (no read of it).
        """
        c: Any = self._cin  # (a ``MeteredConnection`` when metered)
        k = len(batch)
        # ``_collect`` spelled out: this is once per batch.
        if self.pending:
            self.pending.extend(batch)
        else:
            self.pending = batch
            self._island.flush_hooks.append(self._flush)  # type: ignore[union-attr]
        demand = self.demand = self.demand - k
        # The metered counts (reactive.observe) are spelled out in both branches: one
        # check of ``metered`` per batch either way.
        if demand > 0:
            c.demand_n = demand
            if c.metered:  # one push of a batch, counted here
                c.pushes += 1
                c.elements += k
        else:
            c.state = 0
            if c.metered:  # one push of a batch that answered the pending demand
                c.pushes += 1
                c.elements += k
                c.phase = 0  # ``unpended``, spelled out
                now = c.now  # (called as a local: no method lookup on a slot)
                c.pend += now()

    def flush(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            pi = self._peer_island
            sched = self._sched
            if (
                sched.executing
                and pi.waiter is not None
                and not pi.running
                and sched.inline_depth < pi.direct_depth
                and not pi.queue
                and not pi.mailbox
                and sched.diagnosis is None
                and not pi.finished
            ):
                # Fast path: the direct hop. ``Island.signal``'s run nested in another
                # island's run, spelled out (once per batch): the peer island is parked
                # with nothing queued and none of its handlers on the stack, so the
                # batch is what its loop would run next.
                peer: Any = self.peer
                sched.inline_depth += 1
                pi.running = True
                try:
                    if not peer._stopped:
                        c = peer._cout
                        resume = peer._resume
                        if c.state == DEMAND and resume is not None:
                            # ``peer.on_elements(batch)`` spelled out for a fused chain
                            # waiting on the peer (its island's queue is empty and no
                            # diagnosis runs: checked above): it reads the buffer.
                            peer.buffer.extend(batch)
                            c.state = 0
                            if c.metered:  # the chain's (pending) pull answered
                                c.phase = 0
                                now = c.now
                                c.pend += now()
                            try:
                                resume()
                            except (Exception, asyncio.CancelledError) as exc:
                                c.in_logic._handle_error(_as_failure(c.in_logic, exc))
                        else:
                            try:
                                peer.on_elements(batch)
                            except (Exception, asyncio.CancelledError) as exc:
                                peer._handle_error(_as_failure(peer, exc))
                finally:
                    pi.running = False
                    sched.inline_depth -= 1
                pi._after_nested_run()
                return
            self._signal_peer(self.peer, self._peer_elements, batch)

    def on_upstream_finish(self) -> None:
        self.flush()
        peer = self.peer
        assert peer is not None and peer._island is not None
        peer._island.signal(peer, peer.on_complete, None)

    def on_upstream_failure(self, exc: BaseException) -> None:
        # The elements taken before the failure go first, as they would have one by one
        # (Akka sends each onNext before the onError): the other half pushes them to a
        # downstream that pulled, and drops what it still buffers when the failure
        # arrives (``on_fail``).
        self.flush()
        peer = self.peer
        assert peer is not None and peer._island is not None
        peer._island.signal(peer, peer.on_fail, exc)

    def on_cancel(self, cause: BaseException) -> None:
        self.pending = []
        self.cancel(self.in_, cause)

    def _on_abort(self, exc: BaseException) -> None:
        peer = self.peer
        if peer is not None and peer._island is not None and not peer._stopped:
            peer._island.signal(peer, peer.on_fail, exc)


class _BoundaryOut(GraphStageLogic, OutHandler):
    """Downstream half: a source in the consuming island with the bounded buffer."""

    #: Hands out what it has whoever asks how much (see ``_ops.simple.asks_in_batches``).
    _demand_blind = True

    def __init__(self, size: int) -> None:
        self.out: Outlet[Any] = Outlet("async.out")
        super().__init__(SourceShape(self.out))
        self.set_handler(self.out, self)
        self._batch_out = (self.out,)
        self.peer: _BoundaryIn | None = None
        self.size = size
        self.threshold = max(1, size // 2)
        self.buffer: list[Any] = []
        self.consumed = 0
        self.upstream_done = False
        # A fused chain downstream that reads the buffer itself, or a fan-in junction that
        # takes batches synchronously (both set in pre_start).
        self._resume: Any = None
        self._offer: Any = None
        self._cout: Any = None
        # ``peer._island.signal`` and ``peer.on_demand``, bound once (make_boundary):
        # the demand signal is once per half buffer.
        self._signal_peer: Any = None
        self._peer_demand: Any = None
        self._peer_island: Any = None  # ``peer._island`` (make_boundary): the direct hop
        self._sched: Any = None  # ``peer._island.sched`` (make_boundary), read per batch

    def pre_start(self) -> None:
        c = self._cout = self._conns[self.out]
        self._resume = getattr(c.in_logic, "_resume_pulled", None) if c.batch else None
        self._offer = offer_hook(c) if c.batch and self._resume is None else None
        self._request(self.size)

    def _request(self, n: int) -> None:
        peer = self.peer
        assert peer is not None and peer._island is not None
        peer._island.signal(peer, peer.on_demand, n)

    def on_elements(self, batch: list[Any]) -> None:
        c = self._cout
        st = c.state
        buf = self.buffer
        if st & _DEMAND_OPEN != DEMAND:
            buf.extend(batch)
            return
        island = self._island
        if (
            st != DEMAND
            or island is None
            or island.queue
            or island.sched.diagnosis is not None  # one event per step: no shortcuts
        ):
            buf.extend(batch)
            self.on_pull()
            return
        # The in side waits on us and the island's queue is empty: what its event loop
        # would run next is the in side's handling of our answer. Run it now.
        resume = self._resume
        if resume is not None:
            buf.extend(batch)
            # A fused chain: answer its pull by letting it read the buffer (see fused.py),
            # instead of push -> on_push -> grab of one slice.
            c.state = 0
            if c.metered:  # the chain's (pending) pull answered (``unpended``)
                c.phase = 0
                now = c.now
                c.pend += now()
            try:
                resume()
            except (Exception, asyncio.CancelledError) as exc:
                c.in_logic._handle_error(_as_failure(c.in_logic, exc))
            return
        offer = self._offer
        if offer is not None:
            # A fan-in junction: push -> on_push -> grab, synchronously (the batch itself
            # when it is all there is and fits the demand, else a slice of the buffer).
            if buf or len(batch) > c.demand_n:
                buf.extend(batch)
                batch = self._slice(c.demand_n)
            c.state = 0
            if c.metered:  # one push of a batch, counted here (reactive.observe)
                c.pushes += 1
                c.elements += len(batch)
                c.unpended()
            k = len(batch)
            try:
                offer(batch)
            except (Exception, asyncio.CancelledError) as exc:
                c.in_logic._handle_error(_as_failure(c.in_logic, exc))
            # ``_taken(k)`` spelled out: this is once per hop.
            if self.upstream_done:
                if not buf:
                    self.complete(self.out)
                return
            k += self.consumed
            if k >= self.threshold:
                self.consumed = 0
                self._demand_peer(k)
            else:
                self.consumed = k
            return
        buf.extend(batch)
        self._deliver(c)

    def _deliver(self, c: Any) -> None:
        """Push to a waiting in side and run its ``on_push`` now: what the island's event
        loop would run next, its queue being empty (the caller checked, and that the
        connection is exactly ``DEMAND``). When the in side's handler pulled
        us again (its pull the only event queued), that pull is delivered too (PULL_REQ ->
        DEMAND) and, while elements are left, the next slice goes the same way."""
        q = c.q
        if c.metered:  # its island's queue itself (a ``CountingQueue`` is only looked at)
            q = q.queue
        buf = self.buffer
        while True:
            if c.batch and c.demand_n > 1 and len(buf) > 1:
                x: Any = self._slice(c.demand_n)
                k = len(x)
            else:
                x = buf.pop(0)
                k = 1
            c.elem = x
            c.state = AVAIL  # DEMAND -> PUSH_REQ -> AVAIL, delivered
            if c.metered:  # that push, counted here (reactive.observe)
                c.pushes += 1
                c.elements += k
                c.phase = 0  # ``unpended``, spelled out (the demand was pending)
                now = c.now
                c.pend += now()
            try:
                c.in_handler.on_push()
            except (Exception, asyncio.CancelledError) as exc:
                c.in_logic._handle_error(_as_failure(c.in_logic, exc))
            self._taken(k)
            if len(q) != 1 or q[0] is not c or c.state != PULL_REQ:
                return
            q.pop()
            c.state = DEMAND  # our on_pull, which with nothing buffered does nothing
            if not buf:
                return

    def on_complete(self, _: Any) -> None:
        self.upstream_done = True
        if not self.buffer:
            self.complete(self.out)

    def on_fail(self, exc: BaseException) -> None:
        self.buffer.clear()
        self.fail(self.out, exc)

    def _taken(self, k: int) -> None:
        self.consumed += k
        if self.upstream_done:
            if not self.buffer:
                self.complete(self.out)
        elif self.consumed >= self.threshold:
            n_req, self.consumed = self.consumed, 0
            self._demand_peer(n_req)

    def _demand_peer(self, n: int) -> None:
        """Ask the upstream half for ``n`` more elements (``peer.on_demand(n)`` in its
        island). Fast path: the direct hop, as ``_BoundaryIn.flush`` hands a batch over."""
        pi = self._peer_island
        sched = self._sched
        if (
            sched.executing
            and pi.waiter is not None
            and not pi.running
            and sched.inline_depth < pi.direct_depth
            and not pi.queue
            and not pi.mailbox
            and sched.diagnosis is None
            and not pi.finished
        ):
            peer: Any = self.peer
            sched.inline_depth += 1
            pi.running = True
            try:
                if not peer._stopped:
                    # ``peer.on_demand(n)`` spelled out for what the hop knows (its island
                    # is ``pi``, whose queue is empty): an idle connection takes the
                    # pull at once (counted when metered, as there), a pulled or closed
                    # one only counts the demand (``_pull_more`` pulls nothing),
                    # anything else goes the checked way.
                    c = peer._cin
                    st = c.state
                    if st == 0:
                        demand = peer.demand = peer.demand + n
                        c.state = DEMAND
                        if c.metered:  # that pull (reactive.observe: ``pulled``)
                            now = c.now
                            c.phase = 1
                            t = now()
                            c.pend -= t
                            c.pulls += 1
                            # The producer's island runs nested in our island's run, our
                            # consumer held up meanwhile. Not yet asking us again (idle:
                            # a fused chain that read our buffer in place and still
                            # hands its outputs on, a stage with an element pushed and
                            # not yet handled), it is in Akka's model waiting for the
                            # producer (the request it left us is out): the run is
                            # counted as its inlet's wait (starved), from this reading
                            # to one after the run (reactive.observe).
                            co = self._cout
                            if co.metered and not co.phase:
                                co.pend -= t
                            else:
                                co = None  # asking (its wait is counted) or closed
                            if c.batch:
                                c.demand_n = demand
                            try:
                                c.out_handler.on_pull()
                            except (Exception, asyncio.CancelledError) as exc:
                                c.out_logic._handle_error(_as_failure(c.out_logic, exc))
                            if co is not None:
                                co.pend += now()
                        else:
                            if c.batch:
                                c.demand_n = demand
                            try:
                                c.out_handler.on_pull()
                            except (Exception, asyncio.CancelledError) as exc:
                                c.out_logic._handle_error(_as_failure(c.out_logic, exc))
                    elif st & (PULLED | IN_CLOSED):
                        peer.demand += n
                    else:
                        try:
                            peer.on_demand(n)
                        except (Exception, asyncio.CancelledError) as exc:
                            peer._handle_error(_as_failure(peer, exc))
            finally:
                pi.running = False
                sched.inline_depth -= 1
            pi._after_nested_run()
            return
        if pi.running:
            # ``Island.signal`` spelled out for a peer island on the stack (the producer
            # whose run handed the batch over): the request waits in its mailbox.
            if not pi.finished:
                pi.mailbox.append((self.peer, self._peer_demand, n))
            return
        self._signal_peer(self.peer, self._peer_demand, n)

    def _hand_over_up_to(self, n: int) -> list[Any] | None:
        """Hand up to ``n`` buffered elements to the fused chain downstream, synchronously.

        The batch-protocol shortcut of pull -> on_pull -> push -> on_push: the connection's
        state is the same before and after, so only the elements move (see fused.py).
        """
        if not self.buffer:
            return None
        batch = self._slice(n)
        self._taken(len(batch))
        return batch

    def _lend(self) -> list[Any]:
        """The buffer itself, for a fused chain downstream to read from (see fused.py);
        ``_lent(k)`` then removes the ``k`` elements it took."""
        return self.buffer

    def _lent(self, k: int) -> None:
        # ``_taken`` spelled out: this is once per hop.
        if k:
            del self.buffer[:k]
            c = self._cout
            if c.metered:  # one push of a batch, counted here (reactive.observe)
                c.pushes += 1
                c.elements += k
            if self.upstream_done:
                if not self.buffer:
                    self.complete(self.out)
                return
            k += self.consumed
            if k >= self.threshold:
                self.consumed = 0
                self._demand_peer(k)
            else:
                self.consumed = k

    def _slice(self, n: int) -> _Batch:
        buf = self.buffer
        if n >= len(buf):
            batch = _Batch(buf)
            buf.clear()
        else:
            batch = _Batch(buf[:n])
            del buf[:n]
        return batch

    def on_pull(self) -> None:
        buf = self.buffer
        if not buf:
            return
        c = self._conns[self.out]
        n = c.demand_n
        if c.batch and n > 1 and len(buf) > 1:
            batch = self._slice(n)
            self.push(self.out, batch)
            self._taken(len(batch))
            return
        self.push(self.out, buf.pop(0))
        self._taken(1)

    def on_downstream_finish(self, cause: BaseException) -> None:
        peer = self.peer
        assert peer is not None and peer._island is not None
        peer._island.signal(peer, peer.on_cancel, cause)
        self.complete_stage()

    def _on_abort(self, exc: BaseException) -> None:
        peer = self.peer
        if peer is not None and peer._island is not None and not peer._stopped:
            peer._island.signal(peer, peer.on_cancel, exc)


def make_boundary(ctx: Any, ol: Any, op: Any, il: Any, ip: Any) -> None:
    """Join ``ol.op`` (one island) to ``il.ip`` (another) through a bounded boundary."""
    size = int(il._attributes.get("input_buffer") or 16)
    up = _BoundaryIn()
    down = _BoundaryOut(size)
    up.peer = down
    down.peer = up
    ctx.register(up, ol._attributes, ol._island)
    up._stage_name = f"{ol._stage_name}.async-out"
    ctx.register(down, il._attributes, il._island)
    down._stage_name = f"{il._stage_name}.async-in"
    up._peer_island = il._island
    down._peer_island = ol._island
    up._sched = il._island.sched
    down._sched = ol._island.sched
    up._signal_peer = il._island.signal
    up._peer_elements = down.on_elements
    down._signal_peer = ol._island.signal
    down._peer_demand = up.on_demand
    up._cin = ctx._direct(ol, op, up, up.in_)
    ctx._direct(down, down.out, il, ip)

"""The with-context keyed operator's fast path (updates grouped while a write awaits its
acknowledgement, batches taken from upstream) against a reference model: over elements
pushed in batches or one at a time, with writes durable at once or acknowledged later
(so that elements group), raising functions, unserializable keys and values and
supervision, the outputs and their contexts are the reference's, in order; the store
ends with the reference's content; and no output is emitted before the store's
acknowledged writes hold its update (or a later value of its key)."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reactive import Attributes, OverflowStrategy, Source, SourceWithContext, Supervision
from reactive.state import BytesStore, StoreContext, Stores
from tests.state.support import Recording
from tests.state.test_keyed_paths import ELEMENTS, SERDE, Boom, _fits


def reference(
    data: list[tuple[str, Any, Any]], stop: bool
) -> tuple[list[tuple[tuple[Any, Any], int]], dict[bytes, Any], bool]:
    """``((key, new_value), context)`` outputs of ``aggregate_by_key(key=x[1], zero=0,
    agg=cur + x[2])`` with each element's index as its context, the store's final content
    by serialized key, and whether it fails (stop) or skips (resume)."""
    state: dict[bytes, Any] = {}
    out: list[tuple[tuple[Any, Any], int]] = []
    for i, (kind, k, d) in enumerate(data):
        if kind == "key_raises" or not _fits(k):
            if stop:
                return out, state, True
            continue
        kb = SERDE.to_bytes(k)
        if kind == "agg_raises":
            if stop:
                return out, state, True
            continue
        new = state.get(kb, 0) + d
        if not _fits(new):
            if stop:
                return out, state, True
            continue
        state[kb] = new
        out.append(((k, new), i))
    return out, state, False


class Acking(Recording):
    """A layer whose writes are durable at once (``durable`` None) or acknowledged in
    order a little later; ``acked`` is what the acknowledged writes hold."""

    def __init__(self, inner: BytesStore, context: StoreContext, later: bool) -> None:
        super().__init__(inner, context, [])
        self.later = later
        self.acked: dict[bytes, bytes | None] = {}
        self.pending: asyncio.Future[None] | None = None

    def write(self, ops: Any) -> None:
        ops = list(ops)
        super().write(ops)
        if not self.later:
            self.acked.update(ops)
            return
        fut = asyncio.get_running_loop().create_future()

        def ack() -> None:
            self.acked.update(ops)
            fut.set_result(None)

        asyncio.get_running_loop().call_later(0.002, ack)
        self.pending = fut

    def durable(self) -> asyncio.Future[None] | None:
        fut = self.pending
        return None if fut is None or fut.done() else fut

    def close(self) -> None:
        self.final = {kb: SERDE.from_bytes(vb) for kb, vb in self.inner.scan()}
        super().close()


async def run_path(
    path: str, later: bool, data: list[tuple[str, Any, Any]], stop: bool
) -> tuple[list[Any], dict[bytes, Any], BaseException | None, list[str]]:
    layers: list[Acking] = []

    def layer(engine: BytesStore, ctx: StoreContext) -> BytesStore:
        a = Acking(engine, ctx, later)
        layers.append(a)
        return a

    def key(x: tuple[str, Any, Any]) -> Any:
        if x[0] == "key_raises":
            raise Boom("key")
        return x[1]

    def agg(cur: Any, x: tuple[str, Any, Any]) -> Any:
        if x[0] == "agg_raises":
            raise Boom("agg")
        return cur + x[2]

    # When an output is emitted, the acknowledged writes must hold its update, or the
    # value its key took at a later element (updates made while a write was in flight
    # go out together, the last value per key).
    values_from: dict[bytes, list[tuple[int, Any]]] = {}
    for (k, new), i in reference(data, stop)[0]:
        values_from.setdefault(SERDE.to_bytes(k), []).append((i, new))
    early: list[str] = []
    got: list[Any] = []

    def seen(out: tuple[tuple[Any, Any], int]) -> None:
        (k, _new), i = out
        kb = SERDE.to_bytes(k)
        vb = layers[0].acked.get(kb)
        acked = None if vb is None else repr(SERDE.from_bytes(vb))
        if acked not in {repr(v) for j, v in values_from.get(kb, ()) if j >= i}:
            early.append(f"{out!r} emitted when the acknowledged value was {acked}")
        got.append(out)

    src: Any = Source.from_iterable([(x, i) for i, x in enumerate(data)])
    if path == "one_at_a_time":
        src = src.async_boundary().buffer(1, OverflowStrategy.backpressure)
    flow: Any = SourceWithContext.from_tuples(src).aggregate_by_key(
        Stores.in_memory("c").with_layer(layer), key, lambda: 0, agg
    )
    if not stop:
        flow = SourceWithContext(
            flow.as_source().with_attributes(
                Attributes.supervision_strategy(lambda e: Supervision.resume)
            )
        )
    err: BaseException | None = None
    try:
        await flow.as_source().run_foreach(seen)
    except Exception as exc:
        err = exc
    return got, getattr(layers[0], "final", {}), err, early


PATHS = ["pushed_batches", "one_at_a_time"]


@settings(max_examples=40, deadline=None)
@given(data=ELEMENTS, stop=st.booleans(), later=st.booleans())
def test_the_with_context_path_matches_the_reference(
    data: list[tuple[str, Any, Any]], stop: bool, later: bool
) -> None:
    want, want_state, fails = reference(data, stop)

    async def main() -> None:
        for path in PATHS:
            got, final, err, early = await run_path(path, later, data, stop)
            assert early == [], (path, early)
            if fails:
                # Stopped: what was emitted is a prefix (outputs still waiting for their
                # acknowledgement are dropped with the stage, their contexts uncommitted).
                assert repr(got) == repr(want[: len(got)]), path
                assert isinstance(err, (Boom, TypeError)), (path, err)
            else:
                # repr: (True, 1) == (1, 1) in Python, not in the store.
                assert repr(got) == repr(want), path
                assert repr(sorted(final.items())) == repr(sorted(want_state.items())), path
                assert err is None, (path, err)

    asyncio.run(main())

"""The short materialization path of a graph of two stages, and cheaper inner sources.

A linear graph of two stages in one island, neither of which fuses (a source into a
sink: every substream of ``flat_map_merge`` is one, run into its ``SubSinkInlet``), is
materialized by ``_Context._visit_pair`` instead of the general chain walk
(``_visit_chain``). It must decide everything the general walk decides: the same logics
with the same stage names, attributes and islands, the same connections with the same
batch flags and metering, the same materialized values and the same errors. Each case
below runs twice, once with the short path replaced by the general walk, and compares
what the materializer built (recorded at ``finish``), and what the stream did.

``Source.from_iterable`` skips its argument check for a range, list or tuple, and
``Source.single`` for anything but None: the errors for bad arguments are unchanged.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

import pytest

import reactive._impl.materializer as materializer_module
import reactive._ops.nesting as nesting_module
from reactive import Attributes, Keep, Materializer, Sink, Source
from reactive._errors import IllegalGraphError
from reactive._impl.modules import AtomicModule, LinearModule
from reactive._stage.shapes import ClosedShape, Inlet, Shape
from reactive.stage import GraphStage, GraphStageLogic, InHandler

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine


def _describe(ctx: Any) -> tuple[Any, ...]:
    islands = ctx.islands

    def where(isl: Any) -> Any:
        return "host" if isl is ctx.fused_into else islands.index(isl)

    logics = [
        (type(lg).__name__, lg._stage_name, dict(lg._attributes._items), where(lg._island))
        for lg in ctx.logics
    ]
    conns = [
        (
            c.out_logic._stage_name,
            c.out_port.name,
            c.in_logic._stage_name,
            c.in_port.name,
            c.batch,
            type(c).__name__,
        )
        for c in ctx.conns
    ]
    return (logics, conns, len(islands), ctx.metered)


async def _run_both(
    monkeypatch: pytest.MonkeyPatch, run: Callable[[], Coroutine[Any, Any, Any]]
) -> tuple[Any, list[Any]]:
    """``run()`` with the short path, then with the general walk: (result, builds) of
    each; asserts they agree and that the short path was taken at least once."""
    ctx_cls = materializer_module._Context
    finish = ctx_cls.finish
    pair = ctx_cls._visit_pair
    builds: list[Any] = []
    pairs = [0]

    def recording_finish(self: Any) -> None:
        finish(self)
        builds.append(_describe(self))

    def counting_pair(self: Any, *args: Any) -> Any:
        pairs[0] += 1
        return pair(self, *args)

    def general(self: Any, mod: Any, prev: Any, nxt: Any, attrs: Any, island: Any) -> Any:
        return self._visit_chain(mod, attrs, island)

    monkeypatch.setattr(ctx_cls, "finish", recording_finish)
    monkeypatch.setattr(ctx_cls, "_visit_pair", counting_pair)
    short = await run()
    short_builds, builds[:] = list(builds), []
    assert pairs[0] >= 1
    monkeypatch.setattr(ctx_cls, "_visit_pair", general)
    walked = await run()
    assert walked == short
    assert builds == short_builds
    return short, short_builds


def _add(a: int, b: int) -> int:
    return a + b


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("metrics", [False, True])
async def test_flat_map_merge_substreams_are_built_as_by_the_general_walk(
    monkeypatch: pytest.MonkeyPatch, fast: bool, metrics: bool
) -> None:
    # Inner ranges materialized (not read directly: reactive._ops.nesting.DIRECT_INNER).
    monkeypatch.setattr(nesting_module, "DIRECT_INNER", False)

    async def run() -> Any:
        async with Materializer(fast_paths=fast, metrics=metrics) as mat:
            return await (
                Source.from_iterable(range(6))
                .flat_map_merge(3, lambda i: Source.from_iterable(range(i * 10, i * 10 + i)))
                .named("outer")
                .run_with(Sink.fold(0, _add), mat)
            )

    total, builds = await _run_both(monkeypatch, run)
    assert total == sum(x for i in range(6) for x in range(i * 10, i * 10 + i))
    inner = [b for b in builds if b[0] and b[0][-1][0] == "_SubSinkLogic"]
    assert len(inner) == 6
    for logics, conns, _, metered in inner:
        assert [lg[3] for lg in logics] == ["host", "host"]
        # The parent's attributes (its name not handed down) over the defaults.
        assert logics[0][2]["fast_paths"] is fast and logics[0][2]["metrics"] is metrics
        assert "name" not in logics[0][2]
        (conn,) = conns
        assert conn[4] is fast  # batch hand-over from the source into the SubSink
        assert (conn[5] == "MeteredConnection") is metrics and metered is metrics


async def test_inner_sources_with_attributes_and_a_chain_as_control(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def run() -> Any:
        async with Materializer() as mat:
            return await (
                Source.from_iterable([1, 2, 3])
                .flat_map_concat(
                    lambda i: (
                        Source.from_iterable((i, -i))
                        .named(f"inner-{i}")
                        .add_attributes(Attributes.input_buffer(2, 2))
                        if i % 2
                        else Source.single(i).map(lambda x: x * 100)
                    )
                )
                .run_with(Sink.seq(), mat)
            )

    out, builds = await _run_both(monkeypatch, run)
    assert out == [1, -1, 200, 3, -3]
    names = [lg[1] for b in builds for lg in b[0]]
    assert "inner-1" in names and "inner-3" in names


@pytest.mark.parametrize("fast", [True, False])
async def test_top_level_pairs_with_attributes_combine_and_mat_post(
    monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    async def run() -> Any:
        async with Materializer(fast_paths=fast) as mat:
            seq = await Source.from_iterable(range(5)).to_mat(Sink.seq(), Keep.right).run(mat)
            both = (
                Source.single(7)
                .to_mat(Sink.head(), Keep.both)
                .map_materialized_value(lambda p: (type(p[0]).__name__, p[1]))
                .add_attributes(Attributes.input_buffer(4, 4))
                .named("pair")
                .run(mat)
            )
            return seq, both[0], await both[1]

    result, builds = await _run_both(monkeypatch, run)
    assert result == ([0, 1, 2, 3, 4], "NotUsedType", 7)
    assert any(lg[2]["input_buffer"] == 4 for b in builds for lg in b[0])


class _NotALogicSource(GraphStage[Any]):
    def __init__(self) -> None:
        from reactive._stage.shapes import Outlet, SourceShape

        self.shape = SourceShape(Outlet("Bad.out"))

    def create_logic(self, attributes: Any) -> Any:
        return "not a logic"


class _TwoInletSink(GraphStage[Any]):
    """A sink stage with two inlets: appended to a source (as ``SubSinkInlet`` appends
    its sink, with the closed shape given) one of them stays unconnected."""

    name = "TwoIn"

    def __init__(self) -> None:
        self.a: Inlet[Any] = Inlet("TwoIn.a")
        self.b: Inlet[Any] = Inlet("TwoIn.b")
        self.shape = Shape([self.a, self.b], [])

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        stage = self

        class Logic(GraphStageLogic, InHandler):
            def __init__(self) -> None:
                super().__init__(stage.shape)
                self.set_handler(stage.a, self)
                self.set_handler(stage.b, self)

            def on_push(self) -> None:  # pragma: no cover - never runs
                pass

        return Logic()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: LinearModule(
                AtomicModule(_NotALogicSource()),
                Sink.ignore().module,
                Keep.left,
                shape=ClosedShape,
            ),
            r"_NotALogicSource\.create_logic returned 'not a logic', not a GraphStageLogic",
        ),
        (
            lambda: LinearModule(
                Source.single(1).module, AtomicModule(_TwoInletSink()), Keep.left, shape=ClosedShape
            ),
            r"^\[TwoIn\] port 'TwoIn\.b' is not connected$",
        ),
    ],
)
async def test_bad_pairs_fail_with_the_general_walks_errors(
    monkeypatch: pytest.MonkeyPatch, make: Callable[[], Any], message: str
) -> None:
    async def run() -> Any:
        async with Materializer() as mat:
            with pytest.raises(IllegalGraphError, match=message) as info:
                mat.materialize(make())
            return str(info.value)

    await _run_both(monkeypatch, run)


class _Color(enum.Enum):
    RED = 1


class _Indexable:
    """Iterable only through ``__getitem__`` (the old sequence protocol)."""

    def __getitem__(self, i: int) -> int:
        if i >= 3:
            raise IndexError(i)
        return i * 2


class _NotIterable:
    def __repr__(self) -> str:
        return "<x>"


@pytest.mark.parametrize(
    ("arg", "got"),
    [(5, "int 5"), (None, "None"), (2.5, "float 2.5"), (_NotIterable(), "_NotIterable <x>")],
)
def test_from_iterable_still_refuses_what_is_not_iterable(arg: Any, got: str) -> None:
    with pytest.raises(TypeError) as info:
        Source.from_iterable(arg)
    assert (
        str(info.value) == f"Source.from_iterable(iterable): iterable must be iterable, got {got}"
    )


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        (range(3), [0, 1, 2]),
        ([4, 5], [4, 5]),
        ((6,), [6]),
        (_Indexable(), [0, 2, 4]),
        ("ab", ["a", "b"]),
        (_Color, [_Color.RED]),
        ({9: "x"}, [9]),
    ],
)
async def test_from_iterable_accepts_every_iterable(arg: Any, expected: list[Any]) -> None:
    assert await Source.from_iterable(arg).run_with(Sink.seq()) == expected


async def test_single_refuses_only_none() -> None:
    with pytest.raises(ValueError) as info:
        Source.single(None)
    assert str(info.value) == (
        "Source.single(elem): elem must not be None (None is not an element, RS rule 2.13), "
        "got None"
    )
    for x in (0, False, "", []):
        assert await Source.single(x).run_with(Sink.seq()) == [x]


async def test_defaults_fill_what_the_given_attributes_leave_out() -> None:
    # Given attributes that set every default are used as they are; others get the
    # materializer's defaults under them.
    seen: list[dict[str, Any]] = []
    finish = materializer_module._Context.finish

    def recording(self: Any) -> None:
        finish(self)
        seen.extend(dict(lg._attributes._items) for lg in self.logics)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(materializer_module._Context, "finish", recording)
        async with Materializer(input_buffer=8, fast_paths=True, metrics=False) as mat:
            graph = Source.single(1).to_mat(Sink.ignore(), Keep.right)
            await mat.materialize(graph.module, Attributes({"fast_paths": False}))
            full = Attributes({"input_buffer": 2, "fast_paths": False, "metrics": False, "x": 1})
            await mat.materialize(graph.module, full)
    assert seen[0] == {"input_buffer": 8, "fast_paths": False, "metrics": False}
    assert seen[2] == {"input_buffer": 2, "fast_paths": False, "metrics": False, "x": 1}

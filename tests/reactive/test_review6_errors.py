"""Error reporting, from an Akka user's review: an exception a user function raises
reaches the materialized value naming the stage, and ``log()`` reports a failure as
Akka's ``Log`` stage does.

- Before, only the operators with a fused form (map, filter, filter_not, scan,
  drop_while) noted the stage on their function's exception; fold, reduce, map_concat,
  take_while, the sinks' functions (foreach, fold, reduce), a custom stage's handler or
  ``pre_start``, ``log()``'s extractor, and the functions whose failure arrives later
  (map_async, foreach_async, stateful_map, zip_with, ...) gave a bare exception whose
  traceback shows the interpreter or a worker task. An exception escaping a stage's
  handler now gets "raised in stage [name]", and one a stage fails with first (an async
  function's) "the stream failed first in stage [name]" (once; never on a note already
  naming a stage).
- ``log()`` logs an upstream failure at ERROR with its traceback (Akka:
  ``log.error(cause, "[{}] Upstream failed.")``); at another level with type and message
  only. Before, the traceback was never logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest

from reactive import Attributes, Flow, Materializer, Sink, Source
from reactive.stage import (
    FlowShape,
    GraphStage,
    GraphStageLogic,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
)

if TYPE_CHECKING:
    from collections.abc import Callable

PATHS = [pytest.param(True, id="fast"), pytest.param(False, id="plain")]


class Bad(Exception):
    pass


def bad(*args: Any) -> Any:
    raise Bad("user")


async def abad(*args: Any) -> Any:
    await asyncio.sleep(0)
    raise Bad("user")


class _RaisingStage(GraphStage[FlowShape]):
    def __init__(self, where: str) -> None:
        self.shape = FlowShape(Inlet("raising.in"), Outlet("raising.out"))
        self.where = where
        self.name = "my_stage"

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        stage = self

        class Logic(GraphStageLogic, InHandler, OutHandler):
            def __init__(self) -> None:
                super().__init__(stage.shape)
                self.set_handlers(stage.shape.in_, stage.shape.out, self)

            def pre_start(self) -> None:
                if stage.where == "pre_start":
                    bad()

            def on_push(self) -> None:
                self.grab(stage.shape.in_)
                bad()

            def on_pull(self) -> None:
                self.pull(stage.shape.in_)

        return Logic()


def _src() -> Source[int, Any]:
    return Source.from_iterable([1, 2, 3])


CASES: dict[str, tuple[Callable[[Materializer], Any], str]] = {
    "fold": (lambda m: _src().fold(0, bad).run_with(Sink.seq(), m), "fold"),
    "reduce": (lambda m: _src().reduce(bad).run_with(Sink.seq(), m), "reduce"),
    "map_concat": (lambda m: _src().map_concat(bad).run_with(Sink.seq(), m), "map_concat"),
    "take_while": (lambda m: _src().take_while(bad).run_with(Sink.seq(), m), "take_while"),
    "Sink.foreach": (lambda m: _src().run_with(Sink.foreach(bad), m), "foreach_sink"),
    "Sink.fold": (lambda m: _src().run_with(Sink.fold(0, bad), m), "fold_sink"),
    "Sink.reduce": (lambda m: _src().run_with(Sink.reduce(bad), m), "reduce_sink"),
    "custom on_push": (
        lambda m: _src().via(Flow.from_graph(_RaisingStage("on_push"))).run_with(Sink.seq(), m),
        "my_stage",
    ),
    "custom pre_start": (
        lambda m: _src().via(Flow.from_graph(_RaisingStage("pre_start"))).run_with(Sink.seq(), m),
        "my_stage",
    ),
    "map_async": (lambda m: _src().map_async(2, abad).run_with(Sink.seq(), m), "map_async"),
    "map_async_unordered": (
        lambda m: _src().map_async_unordered(2, abad).run_with(Sink.seq(), m),
        "map_async_unordered",
    ),
    "stateful_map": (
        lambda m: _src().stateful_map(lambda: 0, bad, lambda s: None).run_with(Sink.seq(), m),
        "stateful_map",
    ),
    "zip_with": (lambda m: _src().zip_with(_src(), bad).run_with(Sink.seq(), m), "zip_with"),
    "Sink.fold_async": (lambda m: _src().run_with(Sink.fold_async(0, abad), m), "fold_async"),
}


@pytest.mark.parametrize("fast", PATHS)
@pytest.mark.parametrize("case", list(CASES))
async def test_a_user_function_exception_names_its_stage(case: str, fast: bool) -> None:
    run, stage = CASES[case]
    async with Materializer(fast_paths=fast) as mat:
        with pytest.raises(Bad, match="user") as err:
            await run(mat)
    notes = getattr(err.value, "__notes__", [])
    assert len(notes) == 1, notes
    assert f"stage [{stage}]" in notes[0]


@pytest.mark.parametrize("fast", PATHS)
async def test_a_log_extractor_exception_names_the_log_stage(
    fast: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="reactive.log")  # (Akka: extract only when enabled)
    async with Materializer(fast_paths=fast) as mat:
        with pytest.raises(Bad) as err:
            await _src().log("orders", bad).run_with(Sink.seq(), mat)
    assert err.value.__notes__ == [
        "raised in stage [log] (by a function given to it, or its handler)"
    ]


async def test_the_note_is_not_added_twice_to_a_reused_exception(
    materializer: Materializer,
) -> None:
    shared = Bad("shared")

    def raise_shared(acc: Any, x: Any) -> Any:
        raise shared

    for _ in range(2):
        with pytest.raises(Bad):
            await _src().fold(0, raise_shared).run_with(Sink.seq(), materializer)
    assert shared.__notes__ == [
        "raised in stage [fold] (by a function given to it, or its handler)"
    ]


async def test_log_reports_an_upstream_failure_at_error_with_its_traceback(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="reactive.log")
    failure = KeyError("k")
    with pytest.raises(KeyError):
        await Source.failed(failure).log("orders").run_with(Sink.seq(), materializer)
    [record] = [r for r in caplog.records if "Upstream failed" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[1] is failure


async def test_log_at_another_failure_level_logs_no_traceback(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="reactive.log")
    with pytest.raises(KeyError):
        await (
            Source.failed(KeyError("k"))
            .log("orders")
            .with_attributes(Attributes.log_levels(on_failure=logging.WARNING))
            .run_with(Sink.seq(), materializer)
        )
    [record] = [r for r in caplog.records if "Upstream failed" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert not record.exc_info
    assert "KeyError('k')" in record.getMessage()

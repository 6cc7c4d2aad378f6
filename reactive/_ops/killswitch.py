"""Kill switches: stop a running stream from outside (``KillSwitches``)."""

from __future__ import annotations

from typing import Any

from .._stage.logic import GraphStageLogic, GraphStageWithMaterializedValue, InHandler, OutHandler
from .._stage.shapes import BidiShape, FlowShape, Inlet, Outlet
from .simple import FlowLogic

__all__ = ["UniqueKillSwitch", "SharedKillSwitch"]


class _KillSwitchBase:
    def __init__(self) -> None:
        self._callbacks: list[Any] = []
        self._terminated: tuple[str, BaseException | None] | None = None

    def _register(self, cb: Any) -> None:
        if self._terminated is not None:
            cb.invoke(self._terminated)
        else:
            self._callbacks.append(cb)

    def shutdown(self) -> None:
        """Complete downstream and cancel upstream of every stage under this switch."""
        self._fire(("shutdown", None))

    def abort(self, exc: BaseException) -> None:
        """Fail downstream with ``exc`` and cancel upstream of every stage under this switch.

        Raises ``TypeError`` (and fires nothing) when ``exc`` is not an exception."""
        if not isinstance(exc, BaseException):
            raise TypeError(
                f"{self!r}.abort(exc): exc must be an exception, got {type(exc).__name__} {exc!r}"
            )
        self._fire(("abort", exc))

    def _fire(self, cmd: tuple[str, BaseException | None]) -> None:
        if self._terminated is not None:
            return
        self._terminated = cmd
        cbs, self._callbacks = self._callbacks, []
        for cb in cbs:
            cb.invoke(cmd)


class UniqueKillSwitch(_KillSwitchBase):
    """The materialized value of ``KillSwitches.single()``: controls one stream."""

    def __repr__(self) -> str:
        return "UniqueKillSwitch"


class SharedKillSwitch(_KillSwitchBase):
    """A kill switch shared by any number of streams: ``via(switch.flow())``."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError(
                f"SharedKillSwitch(name): name must be a str, got {type(name).__name__} {name!r}"
            )
        super().__init__()
        self.name = name

    def flow(self) -> Any:
        """A pass-through flow controlled by this switch (materialized value: the switch).

        A flow materialized after the switch fired stops at once.

        Emits when upstream emits. Backpressures when downstream does. Completes when upstream
        completes or the switch is shut down. Fails when upstream fails or the switch is
        aborted. Cancels when downstream cancels or the switch is shut down or aborted.
        """
        from .._dsl.blueprints import Flow

        return Flow.from_graph(_KillSwitchStage(self))

    def __repr__(self) -> str:
        return f"KillSwitch({self.name})"  # Akka's SharedKillSwitch.toString


class _KillSwitchStage(GraphStageWithMaterializedValue[FlowShape, Any]):
    name = "kill_switch"

    def __init__(self, shared: SharedKillSwitch | None = None) -> None:
        self.shared = shared
        self.shape = FlowShape(Inlet("KillSwitch.in"), Outlet("KillSwitch.out"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        switch = self.shared if self.shared is not None else UniqueKillSwitch()
        return _KillSwitchLogic(self.shape, switch), switch


class _KillSwitchLogic(FlowLogic):
    def __init__(self, shape: FlowShape, switch: _KillSwitchBase) -> None:
        super().__init__(shape)
        self.switch = switch
        self._cmd_cb = self.get_async_callback(self._on_cmd)
        switch._register(self._cmd_cb)

    def _on_cmd(self, cmd: tuple[str, BaseException | None]) -> None:
        kind, exc = cmd
        if kind == "shutdown":
            self.complete_stage()
        else:
            assert exc is not None
            self.fail_stage(exc)

    def on_push(self) -> None:
        self.push(self.out, self.grab(self.in_))

    def post_stop(self) -> None:
        # A shared switch outlives its streams: forget this one's callback.
        try:
            self.switch._callbacks.remove(self._cmd_cb)
        except ValueError:
            pass


class _BidiKillSwitchStage(GraphStageWithMaterializedValue[BidiShape, Any]):
    """``KillSwitches.single_bidi()``: both directions pass through; the switch stops both."""

    name = "bidi_kill_switch"

    def __init__(self) -> None:
        self.shape = BidiShape(
            Inlet("BidiKillSwitch.in1"),
            Outlet("BidiKillSwitch.out1"),
            Inlet("BidiKillSwitch.in2"),
            Outlet("BidiKillSwitch.out2"),
        )

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        switch = UniqueKillSwitch()
        return _BidiKillSwitchLogic(self.shape, switch), switch


class _Direction(InHandler, OutHandler):
    """One direction of the bidi kill switch: passes ``in_`` to ``out``; completion,
    failure and cancellation stay in this direction (as Akka's ``UniqueBidiKillSwitchStage``)."""

    def __init__(self, logic: GraphStageLogic, in_: Inlet[Any], out: Outlet[Any]) -> None:
        self.logic = logic
        self.in_ = in_
        self.out = out

    def on_push(self) -> None:
        self.logic.push(self.out, self.logic.grab(self.in_))

    def on_upstream_finish(self) -> None:
        self.logic.complete(self.out)

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.logic.fail(self.out, exc)

    def on_pull(self) -> None:
        self.logic.pull(self.in_)

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.logic.cancel(self.in_, cause)


class _BidiKillSwitchLogic(GraphStageLogic):
    def __init__(self, shape: BidiShape, switch: _KillSwitchBase) -> None:
        super().__init__(shape)
        self.set_handlers(shape.in1, shape.out1, _Direction(self, shape.in1, shape.out1))
        self.set_handlers(shape.in2, shape.out2, _Direction(self, shape.in2, shape.out2))
        switch._register(self.get_async_callback(self._on_cmd))

    def _on_cmd(self, cmd: tuple[str, BaseException | None]) -> None:
        kind, exc = cmd
        if kind == "shutdown":
            self.complete_stage()  # completes both outlets, cancels both inlets
        else:
            assert exc is not None
            self.fail_stage(exc)  # fails both outlets, cancels both inlets

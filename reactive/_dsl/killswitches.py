"""``KillSwitches``: the factories of kill switches (the switches and their stage live in
:mod:`reactive._ops.killswitch`)."""

from __future__ import annotations

from typing import Any

from .._checks import check, string
from .._ops.killswitch import (
    SharedKillSwitch,
    UniqueKillSwitch,
    _BidiKillSwitchStage,
    _KillSwitchStage,
)
from .bidi import BidiFlow
from .blueprints import Flow

__all__ = ["KillSwitches"]


class KillSwitches:
    """Factories of kill switches."""

    @staticmethod
    def single() -> Flow[Any, Any, UniqueKillSwitch]:
        """A flow whose materialized value is a ``UniqueKillSwitch`` for this stream.

        ``shutdown()`` completes downstream and cancels upstream; ``abort(exc)`` fails
        downstream with ``exc`` and cancels upstream.

        Emits when upstream emits. Backpressures when downstream does. Completes when upstream
        completes or the switch is shut down. Fails when upstream fails or the switch is
        aborted. Cancels when downstream cancels or the switch is shut down or aborted.
        """

        return Flow.from_graph(_KillSwitchStage())

    @staticmethod
    def single_bidi() -> BidiFlow[Any, Any, Any, Any, UniqueKillSwitch]:
        """A ``BidiFlow`` passing both directions through unchanged, whose materialized value
        is a ``UniqueKillSwitch`` stopping both (Akka's ``KillSwitches.singleBidi``): e.g.
        with ``Flow.from_sink_and_source`` / ``join`` to cut a connection both ways.

        ``shutdown()`` completes both outputs and cancels both inputs; ``abort(exc)`` fails
        both outputs with ``exc`` and cancels both inputs. Until then the directions are
        independent: one completing, failing or cancelling does not end the other.

        Emits when the direction's input emits. Backpressures when the direction's
        output backpressures. Completes (a direction) when its input completes, or both
        when the switch is shut down. Fails (a direction) when its input fails, or both
        when the switch is aborted. Cancels (a direction's input) when its output
        cancels, or both when the switch is shut down or aborted.
        """
        return BidiFlow.from_graph(_BidiKillSwitchStage())

    @staticmethod
    def shared(name: str) -> SharedKillSwitch:
        """A ``SharedKillSwitch``; put ``switch.flow()`` into any number of streams.

        ``name`` (shown in the switch's ``repr``) must be a str (``TypeError`` otherwise).
        """
        check("KillSwitches.shared(name)", string(name))
        return SharedKillSwitch(name)

"""``KillSwitches``: the factories of kill switches (the switches and their stage live in
:mod:`reactive._ops.killswitch`)."""

from __future__ import annotations

from typing import Any

from .._checks import check, string
from .._ops.killswitch import SharedKillSwitch, _KillSwitchStage
from .blueprints import Flow

__all__ = ["KillSwitches"]


class KillSwitches:
    """Factories of kill switches."""

    @staticmethod
    def single() -> Any:
        """A flow whose materialized value is a ``UniqueKillSwitch`` for this stream.

        ``shutdown()`` completes downstream and cancels upstream; ``abort(exc)`` fails
        downstream with ``exc`` and cancels upstream.

        Emits when upstream emits. Backpressures when downstream does. Completes when upstream
        completes or the switch is shut down. Fails when upstream fails or the switch is
        aborted. Cancels when downstream cancels or the switch is shut down or aborted.
        """

        return Flow.from_graph(_KillSwitchStage())

    @staticmethod
    def shared(name: str) -> SharedKillSwitch:
        """A ``SharedKillSwitch``; put ``switch.flow()`` into any number of streams.

        ``name`` (shown in the switch's ``repr``) must be a str (``TypeError`` otherwise).
        """
        check("KillSwitches.shared(name)", string(name))
        return SharedKillSwitch(name)

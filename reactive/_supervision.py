"""Supervision directives and deciders."""

from __future__ import annotations

import enum
from collections.abc import Callable

__all__ = ["Supervision", "Decider", "stopping_decider", "resuming_decider", "restarting_decider"]


class Supervision(enum.Enum):
    """What an operator does when user code raises: stop the stream, resume (drop the
    element) or restart (drop the element and reset the operator's state)."""

    stop = "stop"
    resume = "resume"
    restart = "restart"

    def __repr__(self) -> str:
        return f"Supervision.{self.value}"


Decider = Callable[[BaseException], Supervision]


def stopping_decider(exc: BaseException) -> Supervision:
    """Always stop (the default)."""
    return Supervision.stop


def resuming_decider(exc: BaseException) -> Supervision:
    """Always resume."""
    return Supervision.resume


def restarting_decider(exc: BaseException) -> Supervision:
    """Always restart."""
    return Supervision.restart

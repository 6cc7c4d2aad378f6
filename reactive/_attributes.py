"""Attributes: named settings attached to blueprints; the innermost one wins."""

from __future__ import annotations

import enum
import math
import numbers
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "Attributes",
    "NestedMaterializationCancellationPolicy",
    "nested_materialization_cancellation_policy_of",
]

T = TypeVar("T")


class NestedMaterializationCancellationPolicy(enum.Enum):
    """What an operator that materializes a nested flow later (``future_flow``,
    ``lazy_flow``, ``lazy_future_flow``, ``flat_map_prefix``) does when downstream cancels
    before that flow exists (Akka's ``Attributes.NestedMaterializationCancellationPolicy``).

    Set it with ``Attributes.nested_materialization_cancellation_policy(policy)``; the
    default is ``eager_cancellation``.
    """

    eager_cancellation = "eager_cancellation"
    """The default (Akka's ``EagerCancellation``): cancel upstream at once with the
    downstream cause; the nested flow is never built (the factory is not called, or the
    awaitable's Flow is not materialized) and the materialized future fails with
    ``NeverMaterializedError`` whose ``__cause__`` is the cancellation cause."""
    propagate_to_nested = "propagate_to_nested"
    """Akka's ``PropagateToNested``: hold the cancellation until the nested flow can be
    built (the first element or the prefix arrives, the awaitable completes; upstream is
    still pulled for it), materialize it (the future gets its materialized value), then
    cancel its output with the held cause, so the nested flow's own cancellation logic
    runs. Upstream is cancelled when the nested flow cancels its input. If the flow is
    never built (``lazy_flow`` / ``lazy_future_flow``: upstream ends before the first
    element; ``flat_map_prefix``: upstream fails before the prefix is complete; the
    factory, ``f`` or the awaitable fails) the future fails with
    ``NeverMaterializedError``, as under ``eager_cancellation``."""

    @property
    def propagate_to_nested_materialization(self) -> bool:
        """True for ``propagate_to_nested`` (Akka's ``propagateToNestedMaterialization``)."""
        return self is NestedMaterializationCancellationPolicy.propagate_to_nested

    def __repr__(self) -> str:
        return f"NestedMaterializationCancellationPolicy.{self.value}"


_NMCP = NestedMaterializationCancellationPolicy


class Attributes:
    """An immutable bag of attributes (name, input buffer, supervision, log levels, ...).

    Attributes set on an enclosing composite apply to everything inside it unless an inner
    module sets the same attribute: the most specific (innermost) one wins, as in Akka.
    ``a & b`` merges two bags with ``b`` taking precedence.
    """

    __slots__ = ("_items",)

    def __init__(self, items: dict[str, Any] | None = None) -> None:
        self._items: dict[str, Any] = dict(items) if items else {}

    # -- factories --------------------------------------------------------------------
    @staticmethod
    def name(name: str) -> Attributes:
        """The stage or composite's name, used in error messages and logs."""
        return Attributes({"name": name})

    @staticmethod
    def input_buffer(initial: int, max: int) -> Attributes:
        """Buffer size at async boundaries (``max`` is used; default 16)."""
        if max < 1 or initial < 1:
            raise ValueError(f"input_buffer sizes must be >= 1, got initial={initial} max={max}")
        return Attributes({"input_buffer": max})

    @staticmethod
    def supervision_strategy(decider: Callable[[BaseException], Any]) -> Attributes:
        """Supervision decider ``exc -> Supervision.stop | resume | restart``."""
        return Attributes({"supervision": decider})

    LOG_LEVEL_OFF: Final[int] = -1
    """A level for ``Attributes.log_levels`` meaning "do not log" (Akka's
    ``Attributes.logLevelOff`` / ``Attributes.LogLevels.Off``): ``log`` then logs nothing
    for that event, and does not call its ``extract`` for elements. Negative, so a
    ``logging`` logger given it by mistake does not log either."""

    @staticmethod
    def log_levels(
        on_element: int | None = None, on_finish: int | None = None, on_failure: int | None = None
    ) -> Attributes:
        """Logging levels used by ``log`` (Akka's ``Attributes.logLevels``): ``logging``
        levels (``logging.INFO``, ...) or ``Attributes.LOG_LEVEL_OFF`` to switch that event
        off. ``on_finish`` covers upstream completion and downstream cancellation. None
        leaves the default in place (DEBUG for elements and finish, ERROR for failure)."""
        d: dict[str, Any] = {}
        for key, level in (
            ("on_element", on_element),
            ("on_finish", on_finish),
            ("on_failure", on_failure),
        ):
            if level is None:
                continue
            if not isinstance(level, int) or isinstance(level, bool):
                raise TypeError(
                    f"Attributes.log_levels(on_element, on_finish, on_failure): {key} must "
                    "be a logging level (an int such as logging.INFO) or "
                    f"Attributes.LOG_LEVEL_OFF, got {type(level).__name__} {level!r}"
                )
            d["log_" + key] = level
        return Attributes(d)

    @staticmethod
    def fast_paths(enabled: bool) -> Attributes:
        """Turn the fused batch fast paths on or off (they are on by default)."""
        return Attributes({"fast_paths": enabled})

    @staticmethod
    def metrics(enabled: bool) -> Attributes:
        """Per-stage counters for this graph (see ``reactive.observe``); off by default,
        on for every graph of a ``Materializer(metrics=True)``."""
        return Attributes({"metrics": enabled})

    @staticmethod
    def subscription_timeout(
        timeout: float, mode: Literal["cancel", "warn", "noop"] = "cancel"
    ) -> Attributes:
        """How long a substream Source (from ``group_by``, ``split_when`` /
        ``split_after``, ``prefix_and_tail``'s tail) may wait to be materialized after it
        was emitted, and what happens then (Akka's
        ``ActorAttributes.streamSubscriptionTimeout(timeout, mode)``; default 5 s,
        ``cancel``).

        ``mode``: ``"cancel"`` cancels the substream: its operator sees a cancellation
        with ``SubscriptionTimeoutError`` (``split_*`` drains or, with
        ``SubstreamCancelStrategy.propagate``, cancels the stream; ``group_by`` closes
        the key; ``prefix_and_tail`` cancels upstream) and a later materialization of the
        Source fails with that error. ``"warn"`` logs a warning on the stage's logger
        and keeps waiting; ``"noop"`` keeps waiting silently. ``timeout`` is in seconds,
        a finite number ``> 0``.
        """
        sig = "Attributes.subscription_timeout(timeout, mode)"
        if not isinstance(timeout, numbers.Real) or isinstance(timeout, bool):
            raise TypeError(f"{sig}: timeout must be a number of seconds, got {timeout!r}")
        t = float(timeout)
        if not (t > 0 and math.isfinite(t)):
            raise ValueError(f"{sig}: timeout must be a finite number > 0, got {timeout!r}")
        if mode not in ("cancel", "warn", "noop"):
            raise ValueError(f"{sig}: mode must be 'cancel', 'warn' or 'noop', got {mode!r}")
        return Attributes({"subscription_timeout": (t, mode)})

    @staticmethod
    def nested_materialization_cancellation_policy(
        policy: NestedMaterializationCancellationPolicy | bool,
    ) -> Attributes:
        """What ``future_flow``, ``lazy_flow``, ``lazy_future_flow`` and
        ``flat_map_prefix`` do when downstream cancels before their nested flow is
        materialized (Akka's ``Attributes.NestedMaterializationCancellationPolicy``; see
        ``NestedMaterializationCancellationPolicy``). ``policy`` is a member of that enum,
        or a bool: ``True`` for ``propagate_to_nested``, ``False`` for
        ``eager_cancellation`` (the default; Akka's ``propagateToNestedMaterialization``
        flag).
        """
        if isinstance(policy, bool):
            policy = _NMCP.propagate_to_nested if policy else _NMCP.eager_cancellation
        elif not isinstance(policy, _NMCP):
            raise TypeError(
                "Attributes.nested_materialization_cancellation_policy(policy): policy must "
                "be a NestedMaterializationCancellationPolicy or a bool, got "
                f"{type(policy).__name__} {policy!r}"
            )
        return Attributes({"nested_materialization_cancellation_policy": policy})

    @staticmethod
    def none() -> Attributes:
        """The empty attribute bag."""
        return _EMPTY

    # -- access -----------------------------------------------------------------------
    def get(self, key: str, default: T | None = None) -> Any:
        """The value of attribute ``key`` or ``default``."""
        return self._items.get(key, default)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def and_then(self, other: Attributes) -> Attributes:
        """Merge: ``other`` wins where both set an attribute."""
        if not other._items:
            return self
        if not self._items:
            return other
        d = dict(self._items)
        d.update(other._items)
        return Attributes(d)

    __and__ = and_then

    @property
    def name_or_none(self) -> str | None:
        """The name attribute if set."""
        return self._items.get("name")

    def __bool__(self) -> bool:
        return bool(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Attributes) and other._items == self._items

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._items)))

    def __repr__(self) -> str:
        return f"Attributes({self._items!r})"


_EMPTY = Attributes()


def nested_materialization_cancellation_policy_of(
    attributes: Attributes,
) -> NestedMaterializationCancellationPolicy:
    """The ``NestedMaterializationCancellationPolicy`` in force in ``attributes``
    (``eager_cancellation``, Akka's default, when none is set)."""
    policy = attributes.get("nested_materialization_cancellation_policy")
    return policy if isinstance(policy, _NMCP) else _NMCP.eager_cancellation

"""The batch protocol: the fast path between logics on one connection, declared in one place.

A connection is a *batch connection* when its out side lists the outlet in ``_batch_out``
and its in side lists the inlet in ``_batch_in`` (and fast paths are on): the in side may
then ask for ``demand_n > 1`` elements with one pull, and the out side may answer with one
:class:`Batch` of at most ``demand_n`` elements. Nothing moves beyond demand; order,
completion, failure and cancellation are those of the element-at-a-time protocol
(``reactive/_impl/fused.py`` has the invariants, the differential tests check them).

On a batch connection three optional hooks skip the pull -> on_pull -> push -> on_push
round trip; the connection's state is the same before and after, only elements move:

- :class:`HandsOver` (upstream): ``_hand_over_up_to(n)`` gives up to ``n`` elements to the
  downstream logic right now (a list, or a lazy iterator; ``None``: nothing ready), and a
  lazy one is settled with ``_hand_over_settle(exc)`` once the caller's loop ended (a
  lazy take reads its elements only as the caller's loop asks for them: what it leaves
  unread stays in the source, so a caller may ask for more than it will use); a
  downstream that takes one element at a time may call ``_hand_over_one()`` instead (the
  lazy take of one element and its settling in one call: the element, or
  :data:`NOTHING`; found by :func:`take_one_hook`); ``_holds_no_none()`` says that
  nothing it hands over can be ``None`` (a range; :func:`holds_no_none`). A
  fan-out junction offers ``_hand_over_i(i, n)`` per output instead (found per connection
  by :func:`hand_over_hook_of`), never lazy, and may offer ``_hand_over_one_i(i)``, the
  same for one element (the element or :data:`NOTHING`; :func:`hand_over_one_hook_of`).
- A downstream that keeps only the last element of each batch (``Sink.last``) says so
  with ``_keeps_last_only()`` (:func:`keeps_last_only`).
- :class:`AcceptsBatches` (downstream, an async boundary's input): ``_give(batch)`` takes a
  batch the upstream chain produced.
- A lender (an async boundary's output): ``_lend()`` returns its buffer for the chain to
  read in place, and ``_lent(k)`` tells it that ``k`` of those elements were used.
- A synchronous pull (an upstream ``map_async(1)`` while it offers its result to a fan-in
  junction): ``_take_pull()`` returns True when the upstream's ``on_pull`` would do
  nothing it does not do anyway once the offer returns; the junction then marks the idle
  connection ``DEMAND`` instead of queueing a pull. Found by :func:`pull_hook`.
- A fan-in junction on the batch protocol (downstream of an async boundary's output):
  ``_accept_i(i, batch)`` stands for push -> on_push of input ``i`` -> grab of a non-empty
  batch on a connection that was exactly ``DEMAND`` and is left idle (the junction may
  pull it again); found per connection by :func:`offer_hook`. ``_accept_one_i(i, x)`` is
  the same for one element offered by an upstream whose pull it takes synchronously
  (:func:`offer_one_hook`).

The lookups below are the only place these hooks are found by name.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .logic import Batch

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "Batch",
    "NOTHING",
    "AcceptsBatches",
    "HandsOver",
    "accept_hook",
    "hand_over_hook",
    "hand_over_hook_of",
    "hand_over_one_hook_of",
    "holds_no_none",
    "keeps_last_only",
    "lend_hook",
    "note_unsent",
    "note_unsent_derived",
    "offer_hook",
    "offer_one_hook",
    "pull_hook",
    "settle_hook",
    "take_one_hook",
]


class _Nothing:
    """The type of :data:`NOTHING`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOTHING"


#: What ``_hand_over_one()`` returns when no element is ready.
NOTHING: Any = _Nothing()


@runtime_checkable
class HandsOver(Protocol):
    """An upstream logic that can hand elements over synchronously (see the module)."""

    def _hand_over_up_to(self, n: int) -> Iterable[Any] | None: ...


@runtime_checkable
class AcceptsBatches(Protocol):
    """A downstream logic that takes whole batches synchronously (see the module)."""

    def _give(self, batch: list[Any]) -> None: ...


def _per_port(logic: Any, handler: Any, name: str) -> Any:
    """``logic.<name>`` bound to the port index of ``handler`` (a junction's handler of
    one input or output: its ``i``), or None if the logic has no such method or the
    handler no index."""
    method = getattr(logic, name, None)
    i = getattr(handler, "i", None)
    if method is None or type(i) is not int:
        return None
    return functools.partial(method, i)


def hand_over_hook(logic: Any, conn: Any = None) -> Callable[[int], Iterable[Any] | None] | None:
    """``logic._hand_over_up_to`` if the logic offers it (an out side of a batch connection).

    ``conn``, the connection the caller takes across: a metered one may carry the take
    counted by ``reactive.observe`` (``counted_take``), which is then the hook (the
    metrics put nothing on the logic: see ``GraphStageLogic._stage_meter``)."""
    if conn is not None and conn.metered and conn.counted_take is not None:
        counted: Callable[[int], Iterable[Any] | None] = conn.counted_take
        return counted
    hook: Callable[[int], Iterable[Any] | None] | None = getattr(logic, "_hand_over_up_to", None)
    return hook


def hand_over_hook_of(conn: Any) -> Callable[[int], Iterable[Any] | None] | None:
    """The hand-over for the in side of ``conn``: a fan-out junction's per-output
    ``_hand_over_i`` bound to the connection's output index if it has one, else
    :func:`hand_over_hook` of the out side."""
    hook: Callable[[int], Iterable[Any] | None] | None = _per_port(
        conn.out_logic, conn.out_handler, "_hand_over_i"
    )
    if hook is None:
        return hand_over_hook(conn.out_logic, conn)
    if conn.metered:
        # The per-output hand-over counted by ``reactive.observe`` on this connection (a
        # take: one pull and one push with no phase change, and its elements).
        counted: Callable[[int], Iterable[Any] | None] | None = conn.counted_port_take
        return counted
    return hook


def hand_over_one_hook_of(conn: Any) -> Callable[[], Any] | None:
    """A fan-out junction's per-output one-element hand-over for the in side of ``conn``
    (``_hand_over_one_i`` bound to the connection's output index: the element, or
    :data:`NOTHING`, standing for ``_hand_over_i(i, 1)``), if it has one; else None. On a
    metered ``conn`` the caller counts each element it gets as a take (reactive.observe:
    ``takes`` and ``elements``; its only caller, ``map_async(1)``, does)."""
    hook: Callable[[], Any] | None = _per_port(conn.out_logic, conn.out_handler, "_hand_over_one_i")
    return hook


def settle_hook(logic: Any, conn: Any = None) -> Callable[[BaseException | None], None] | None:
    """``logic._hand_over_settle`` if its hand-over is lazy (an iterator to settle).

    ``conn`` as for :func:`hand_over_hook` (a metered connection's ``counted_settle``)."""
    if conn is not None and conn.metered and conn.counted_settle is not None:
        counted: Callable[[BaseException | None], None] = conn.counted_settle
        return counted
    hook: Callable[[BaseException | None], None] | None = getattr(logic, "_hand_over_settle", None)
    return hook


def holds_no_none(logic: Any) -> bool:
    """True when ``logic`` (the out side of a batch connection) says nothing it hands over
    can be ``None`` (``_holds_no_none()``: an iterable source of a range): a caller may
    then leave out its check of each element handed over (RS rule 2.13)."""
    says = getattr(logic, "_holds_no_none", None)
    return says is not None and says() is True


def keeps_last_only(logic: Any) -> bool:
    """True when ``logic`` (the in side of a batch connection) says it keeps only the last
    element of what it is pushed (``_keeps_last_only()``: ``Sink.last``): an upstream may
    then push, for a batch of its outputs, a batch of just the last of them (on a
    connection where no metrics count the elements: see ``reactive._impl.fused``)."""
    says = getattr(logic, "_keeps_last_only", None)
    return says is not None and says() is True


def take_one_hook(logic: Any, conn: Any = None) -> Callable[[], Any] | None:
    """``logic._hand_over_one`` if the logic hands over one element at a time right now
    (an iterable source): the element, or :data:`NOTHING` when none is ready (nor a
    ``None`` element: the caller's pull then fails the source, as its push would); the source
    has looked ahead (and completed, or noted its iterator's failure for its next pull)
    when it returns, exactly as a lazy take of one element settled with None.

    ``conn``, the connection the caller takes across: on a metered one the take counted by
    ``reactive.observe`` (``counted_take_one``), or None when there is none."""
    if conn is not None and conn.metered:
        counted: Callable[[], Any] | None = conn.counted_take_one
        return counted
    hook: Callable[[], Any] | None = getattr(logic, "_hand_over_one", None)
    return hook


def note_unsent(conn: Any, k: int = 1) -> None:
    """A fast path found a ``None`` among what it took from the source's iterator across
    ``conn`` (RS rule 2.13: the source fails): on a metered connection, the ``k`` elements
    it took and never sent (the ``None`` and what it read after it) are taken off the
    element count (reactive.observe's counts follow the iterator). Off the hot path."""
    if conn.metered:
        conn.unsent += k


def note_unsent_derived(conn: Any, k: int = 1) -> None:
    """:func:`note_unsent` for a source's own push path: its pushes are counted as they
    are queued, so only a count derived from its iterator (a tuple's, see
    reactive.observe) includes the ``k`` elements it read and never sent."""
    if conn.metered and conn.derive is not None:
        conn.unsent += k


def lend_hook(logic: Any) -> Callable[[], list[Any]] | None:
    """``logic._lend`` if the logic lends its buffer (an async boundary's output): the
    chain reads the elements in place and reports with ``_lent(k)`` how many it used."""
    hook: Callable[[], list[Any]] | None = getattr(logic, "_lend", None)
    return hook


def accept_hook(logic: Any) -> Callable[[list[Any]], None] | None:
    """``logic._give`` if the logic takes whole batches (an in side of a batch connection)."""
    hook: Callable[[list[Any]], None] | None = getattr(logic, "_give", None)
    return hook


def offer_hook(conn: Any) -> Callable[[list[Any]], None] | None:
    """``conn.in_logic._accept_i`` bound to the connection's input index, if its in side is
    a fan-in junction that takes whole batches per input (see the module); else None."""
    hook: Callable[[list[Any]], None] | None = _per_port(
        conn.in_logic, conn.in_handler, "_accept_i"
    )
    return hook


def offer_one_hook(conn: Any) -> Callable[[Any], None] | None:
    """``conn.in_logic._accept_one_i`` bound to the connection's input index: the offer of
    one element by an upstream whose pull the junction takes synchronously (a
    ``map_async(1)``, see :func:`pull_hook`), standing for ``_accept_i(i, [x])``; None if
    the in side has no such hook (:func:`offer_hook` then serves). The upstream calls it
    only while its ``_take_pull`` says True: the junction does not ask again. On a
    metered ``conn`` the upstream counts its push but leaves the connection's pending
    phase (reactive.observe) for the junction to end: at once if it pulls again right
    away (the phase goes on, one pull counted), otherwise before it takes the element."""
    hook: Callable[[Any], None] | None = _per_port(conn.in_logic, conn.in_handler, "_accept_one_i")
    return hook


def pull_hook(conn: Any) -> Callable[[], bool] | None:
    """``conn.out_logic._take_pull`` if the out side of the batch connection ``conn`` takes
    a pull synchronously at times (see the module); else None. (On a metered ``conn`` the
    junction counts the pull it marks: ``MeteredConnection.pulled``.)"""
    if not conn.batch:
        return None
    hook: Callable[[], bool] | None = getattr(conn.out_logic, "_take_pull", None)
    return hook

"""The registry of running store views: what queryable state (``reactive.state.http``) serves.

Every :class:`~reactive._impl.materializer.Materializer` has one :class:`StateRegistry`
(:func:`registry_of`): ``aggregate_by_key``/``stateful_map_by_key`` register their view
when their stage starts (under the store's name and the partition it serves, None when
not partitioned) and unregister it when the stage stops; a Kafka ``KTable`` registers the
store of each partition it is assigned and unregisters it when the partition is revoked
(a global table registers one store, partition None). A registry can also be filled by
hand (``register``/``unregister``) with any read-only view.

A windowed operator's store (``windowed(..., store=...)``) registers a
:class:`~reactive.state.WindowStoreView` the same way (with ``fetch``/``fetch_all``
instead of ``get``/``range``): :meth:`StateRegistry.fetch` and
:meth:`StateRegistry.fetch_all` read it, :meth:`StateRegistry.is_windowed` tells the
two apart. One name holds views of one kind: a windowed view registered under the name
of key-value views (or the reverse) is refused.

Several views may share a name: the instances of one store for different partitions,
and also two materializations of one blueprint (each has its own store). Reads go
through every view of the name, the most recently registered first.

A view may be registered before it holds its state (a store restoring its changelog, a
table catching up with its topic): ``register(..., ready=f)`` gives a function telling
whether it is ready; :meth:`StateRegistry.is_ready` is False while any view of a name is
not, and queries over HTTP then answer 503 (as Kafka Streams' interactive queries refuse
a restoring store) instead of a partial answer.

:meth:`StateRegistry.add_listener` is told the name of every registration and
unregistration (``connectors.kafka.membership.GroupMembership.track_store`` follows the
partitions of a store served here with it).
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["StateRegistry", "registry_of"]

_MISSING: Any = object()
log = logging.getLogger("reactive.state")


def _is_windowed(view: Any) -> bool:
    """A windowed view (``fetch``, ``fetch_all``), not a key-value one."""
    return callable(getattr(view, "fetch_all", None)) and callable(getattr(view, "fetch", None))


class StateRegistry:
    """Store views by name and partition, for queries (see the module docstring)."""

    __slots__ = ("_views", "_ready", "_listeners", "__weakref__")

    def __init__(self) -> None:
        self._views: dict[str, list[tuple[int | None, Any]]] = {}
        self._ready: dict[int, Callable[[], bool]] = {}  # id(view) -> is it ready?
        self._listeners: list[Callable[[str], Any]] = []

    def add_listener(self, listener: Callable[[str], Any]) -> None:
        """Call ``listener(name)`` after every :meth:`register` and :meth:`unregister` of
        a view of ``name`` (the partitions served here may have changed). A listener that
        raises is logged and the others are still called."""
        if not callable(listener):
            raise TypeError(f"StateRegistry.add_listener: expected a callable, got {listener!r}")
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[str], Any]) -> None:
        """Stop calling ``listener`` (or an equal one: the same bound method); nothing
        happens if it was not added."""
        self._listeners[:] = [f for f in self._listeners if f != listener]

    def _changed(self, name: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(name)
            except Exception:
                log.exception("state registry: a listener failed on store %r", name)

    def register(
        self,
        name: str,
        view: Any,
        partition: int | None = None,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        """Make ``view`` queryable as ``name``: a key-value view (``get``, ``len``,
        ``range``) or a windowed one (``fetch``, ``fetch_all``, ``len``); ``ready``
        (None: always) tells whether it holds its state yet. ``ValueError`` when ``name``
        already has views of the other kind."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"StateRegistry.register: name must be a non-empty str, got {name!r}")
        windowed = _is_windowed(view)
        if not windowed and (
            not callable(getattr(view, "get", None)) or not callable(getattr(view, "range", None))
        ):
            raise TypeError(
                f"StateRegistry.register({name!r}): view must be a read-only store view "
                f"(get, range, len) or a windowed one (fetch, fetch_all, len), got {view!r}"
            )
        if partition is not None and (type(partition) is not int or partition < 0):
            raise TypeError(
                f"StateRegistry.register({name!r}): partition must be an int >= 0 or None, "
                f"got {partition!r}"
            )
        if ready is not None and not callable(ready):
            raise TypeError(
                f"StateRegistry.register({name!r}): ready must be callable, got {ready!r}"
            )
        entries = self._views.get(name)
        if entries and _is_windowed(entries[0][1]) != windowed:
            have, got = ("key-value", "windowed") if windowed else ("windowed", "key-value")
            raise ValueError(
                f"StateRegistry.register({name!r}): {name!r} is the name of a {have} store "
                f"here, so a {got} view cannot be registered under it: give each store its "
                "own name"
            )
        self._views.setdefault(name, []).append((partition, view))
        if ready is not None:
            self._ready[id(view)] = ready
        if self._listeners:
            self._changed(name)

    def unregister(self, name: str, view: Any) -> None:
        """Forget ``view`` (registered as ``name``); nothing happens if it is not there."""
        entries = self._views.get(name)
        if not entries:
            return
        before = len(entries)
        entries[:] = [(p, v) for p, v in entries if v is not view]
        if not any(v is view for e in self._views.values() for _, v in e):
            self._ready.pop(id(view), None)
        if not entries:
            del self._views[name]
        if self._listeners and len(entries) != before:
            self._changed(name)

    def is_ready(self, name: str) -> bool:
        """False while a view of ``name`` is still restoring (see the module docstring)."""
        ready = self._ready
        return not ready or all(
            (f := ready.get(id(v))) is None or f() for _, v in self._views.get(name, ())
        )

    def names(self) -> list[str]:
        """The names with at least one view, sorted."""
        return sorted(self._views)

    def __contains__(self, name: object) -> bool:
        return name in self._views

    def views(self, name: str) -> list[tuple[int | None, Any]]:
        """``(partition, view)`` of ``name``, the most recently registered first; empty
        when nothing is registered under it."""
        return list(reversed(self._views.get(name, ())))

    def partitions(self, name: str) -> list[int | None]:
        """The partitions served here for ``name`` (None: a store that is not partitioned,
        e.g. a global table, which holds every key), sorted with None first."""
        found = {p for p, _ in self._views.get(name, ())}
        return sorted(found, key=lambda p: -1 if p is None else p)

    def is_windowed(self, name: str) -> bool:
        """True when ``name`` is a windowed operator's store (read it with :meth:`fetch`
        and :meth:`fetch_all`, not :meth:`get` and :meth:`range`)."""
        entries = self._views.get(name)
        return entries is not None and _is_windowed(entries[0][1])

    def _kind(self, op: str, name: str, windowed: bool) -> None:
        if self.is_windowed(name) != windowed:
            if windowed:
                raise TypeError(
                    f"StateRegistry.{op}({name!r}): a key-value store (read it with get and range)"
                )
            raise TypeError(
                f"StateRegistry.{op}({name!r}): a windowed store (read it with fetch and fetch_all)"
            )

    def get(self, name: str, key: Any, default: Any = None) -> Any:
        """The value of ``key`` in the first view of ``name`` that has one, or ``default``
        (``TypeError`` for a windowed store)."""
        if name in self._views:
            self._kind("get", name, False)
        for _, view in self.views(name):
            value = view.get(key, _MISSING)
            if value is not _MISSING:
                return value
        return default

    def size(self, name: str) -> int:
        """The number of keys of ``name`` served here (every view counted)."""
        return sum(len(view) for _, view in self.views(name))

    def range(
        self, name: str, start: Any = None, end: Any = None, limit: int | None = None
    ) -> Iterator[tuple[Any, Any]]:
        """``(key, value)`` with ``start <= key < end`` from every view of ``name``: each
        view's keys in its order, views by partition (at most ``limit`` pairs;
        ``TypeError`` for a windowed store)."""
        if name in self._views:
            self._kind("range", name, False)
        ordered = sorted(self.views(name), key=lambda pv: -1 if pv[0] is None else pv[0])
        n = 0
        for _, view in ordered:
            for pair in view.range(start, end):
                if limit is not None and n >= limit:
                    return
                n += 1
                yield pair

    def fetch(self, name: str, key: Any, time_from: Any = None, time_to: Any = None) -> list[Any]:
        """The windows (``Windowed``) of ``key`` whose start is in ``[time_from,
        time_to]`` (None: unbounded) from every view of the windowed store ``name``, in
        start order (see ``WindowStoreView.fetch``); empty when nothing is registered
        under ``name``, ``TypeError`` for a key-value store."""
        if name not in self._views:
            return []
        self._kind("fetch", name, True)
        views = self.views(name)
        if len(views) == 1:
            out: list[Any] = views[0][1].fetch(key, time_from, time_to)
            return out
        found = [w for _, view in views for w in view.fetch(key, time_from, time_to)]
        found.sort(key=lambda w: (w.start, w.end))
        return found

    def fetch_all(
        self, name: str, time_from: Any = None, time_to: Any = None, limit: int | None = None
    ) -> list[Any]:
        """The windows whose start is in ``[time_from, time_to]`` from every view of the
        windowed store ``name``: views by partition, each view's windows in its order
        (``WindowStoreView.fetch_all``), at most ``limit`` of them; ``TypeError`` for a
        key-value store."""
        if name not in self._views:
            return []
        self._kind("fetch_all", name, True)
        ordered = sorted(self.views(name), key=lambda pv: -1 if pv[0] is None else pv[0])
        out: list[Any] = []
        for _, view in ordered:
            if limit is not None and len(out) >= limit:
                break
            out.extend(view.fetch_all(time_from, time_to))
        return out if limit is None else out[:limit]

    def __repr__(self) -> str:
        return f"<StateRegistry {self.names()!r}>"


_REGISTRIES: weakref.WeakKeyDictionary[Any, StateRegistry] = weakref.WeakKeyDictionary()


def registry_of(materializer: Any) -> StateRegistry:
    """The :class:`StateRegistry` of ``materializer`` (created on first use)."""
    registry = _REGISTRIES.get(materializer)
    if registry is None:
        registry = _REGISTRIES[materializer] = StateRegistry()
    return registry

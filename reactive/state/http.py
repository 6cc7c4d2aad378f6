"""Queryable state over HTTP: an aiohttp server, in the stream's event loop, serving the
store views of a :class:`~reactive.state.StateRegistry` as JSON (the ``http`` extra).

Routes (``{store}`` is a registered name; every answer is a JSON object, also a 404
for a path no route takes, such as an empty key, and a 405 for a method other than GET):

``GET /stores``
    ``{"stores": [{"store", "partitions", "size", "ready"}]}`` for every registered store.
``GET /stores/{store}``, ``GET /stores/{store}/size``
    ``{"store", "partitions", "size", "ready"}``: the partitions served here (``null``
    stands for a store that is not partitioned: a global table or an unpartitioned
    operator), the number of keys they hold, and whether every one holds its state
    (``false`` while a store restores its changelog or a table catches up with its topic).
``GET /stores/{store}/keys/{key}``
    ``{"store", "key", "value"}``; 404 ``{"error"}`` when no view here has the key. With
    ``ownership`` (see below) a key whose partition another member serves is answered
    with a **307 redirect** to the same path on that member's endpoint (the body says
    ``{"store", "key", "partition", "owner"}``): an HTTP client following redirects
    gets the value from whichever member it asked; a proxy can route on the metadata.
    A key whose partition no member serves right now (``owner_of`` gives endpoint None:
    a rebalance under way, or the owner has not published its endpoint yet) answers
    **503** ``{"error", "partition"}`` with ``Retry-After``, not 404: the key may exist.
    So does a key ``owner_of`` names this member for while no store here serves its
    partition (a stale record of this endpoint, say). A store not registered here at
    all (this member serves none of its partitions right now: all revoked in a
    rebalance, none assigned yet, more members than partitions) is routed the same way
    when ``ownership`` knows it; 404 ``no store ... is registered here`` only when it
    does not. An ownership that cannot answer yet (``OwnershipNotReadyError``: a
    ``GroupMembership`` still starting) answers **503** with ``Retry-After`` too.
``GET /stores/{store}/keys?from=&to=&limit=``
    ``{"store", "items": [[key, value], ...]}``: keys with ``from <= key < to`` (either
    bound may be left out) from the partitions served here, each partition in key order;
    ``limit`` (default 1000) bounds the answer.
``GET /stores/{store}/windows/{key}?from=&to=``
    ``{"store", "key", "items": [[start, end, value], ...]}``: the windows of ``key``
    in a windowed operator's store (``windowed(..., store=...)``) whose start is in
    ``[from, to]`` (event-time seconds, both inclusive, either left out: unbounded), in
    start order, with their current aggregate: the open windows and those closed but
    not emitted yet (``WindowStoreView.fetch``). A key without windows answers an empty
    list (as Kafka Streams' ``fetch``), not 404. A bound that is not a number answers
    400; ownership, readiness and key parsing as for ``/keys/{key}`` (307 to the owner,
    503 while restoring or while nobody serves the key's partition, also for a store
    not registered here that ``ownership`` knows, 400 for a key its parser refuses).
``GET /stores/{store}/windows?from=&to=&limit=``
    ``{"store", "items": [[key, start, end, value], ...]}``: every window whose start is
    in ``[from, to]`` from the partitions served here (``fetch_all``), at most ``limit``
    (default 1000).

The key routes (``/keys``) of a windowed store, and the window routes of a key-value
store, answer 400 naming the routes to use. In ``/stores`` and ``/stores/{store}`` a
windowed store has ``"windows": "time" | "session" | "sliding"`` too, and its ``size``
counts the windows it holds.

``GET /stores/{store}/owner/{key}``
    ``{"store", "key", "partition", "owner", "local"}``: which member serves the
    partition of ``key`` (needs ``ownership``; 404 without it).

While a store is not ready, key and range queries answer **503** ``{"error"}`` with a
``Retry-After`` header (as Kafka Streams refuses to query a restoring store): a partial
store would answer 404 for keys it holds once restored. An error the server did not
expect (a key serializer or ownership lookup that raises, say) answers 500 with a JSON
``{"error"}`` naming it, and is logged.

Keys arrive as strings: ``key_parsers`` maps a store name to a function decoding the
path or query string into the store's key type (``{"counts": int}``); without one the
string is the key. A key its parser refuses answers 400 naming the store and the parser's
error; a key (or range bound) the store's key serde cannot encode answers 400 too, with
the serde's error. Values are written with ``json.dumps``; ``bytes`` become text (UTF-8, undecodable
bytes escaped), other non-JSON values their ``repr``, and floats JSON cannot hold (NaN,
infinities) the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.

Ownership: an object with ``owner_of(store, key) -> (partition, endpoint) | None``
(``connectors.kafka.membership.GroupMembership`` is one: members publish their endpoint
and partitions to a compacted topic). None for a store it does not know, or a key any
member can answer.
"""

from __future__ import annotations

import json
import logging
import math
from typing import TYPE_CHECKING, Any, Protocol, Self

try:
    from aiohttp import web
except ModuleNotFoundError as _missing:  # pragma: no cover - depends on the install
    if not (_missing.name or "").startswith("aiohttp"):
        raise
    raise ModuleNotFoundError(
        f"reactive.state.http needs aiohttp ({_missing}), which the 'http' extra installs: "
        "pip install 'reactive-streams-py[http]'",
        name=_missing.name,
    ) from _missing

from ._registry import StateRegistry
from .errors import KeySerdeError, OwnershipNotReadyError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["Ownership", "StateServer", "start_app"]

_MISSING: Any = object()
DEFAULT_LIMIT = 1000
RETRY_AFTER = "1"  # seconds, on a 503 (a store not ready, a partition nobody serves)

log = logging.getLogger("reactive.state.http")
_PARSERS: web.AppKey[Mapping[str, Callable[[str], Any]]] = web.AppKey("key_parsers")


async def start_app(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``host:port`` (port 0: a free one) in the running event loop;
    returns the runner (``await runner.cleanup()`` stops it) and the base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    server: Any = site._server
    return runner, f"http://{host}:{server.sockets[0].getsockname()[1]}"


class Ownership(Protocol):
    """Who serves the partition of a key (see the module docstring)."""

    def owner_of(self, store: str, key: Any) -> tuple[int, str | None] | None:
        """``(partition, endpoint)`` of ``key`` in ``store`` (endpoint None: nobody
        known), or None when any member can answer."""
        ...


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray):
        return bytes(obj).decode("utf-8", "backslashreplace")
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=repr)
    return repr(obj)


def _finite(obj: Any) -> Any:
    """``obj`` with every float JSON cannot hold (NaN, infinities) as its JSON-ish name."""
    if isinstance(obj, float):
        if math.isnan(obj):
            return "NaN"
        if math.isinf(obj):
            return "Infinity" if obj > 0 else "-Infinity"
        return obj
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _dumps(body: Any) -> str:
    try:
        return json.dumps(body, default=_jsonable, allow_nan=False)
    except ValueError:  # a NaN or an infinity somewhere (rare: walk the body only then)
        return json.dumps(_finite(body), default=_jsonable, allow_nan=False)


def _limit(q: Any) -> int | web.Response:
    """The ``limit`` query parameter (``DEFAULT_LIMIT`` when absent), or the 400 answer
    for one that is not an int >= 0."""
    try:
        limit = int(q.get("limit", DEFAULT_LIMIT))
        if limit < 0:
            raise ValueError("negative")
    except ValueError:
        return _json({"error": f"limit must be an int >= 0, got {q.get('limit')!r}"}, 400)
    return limit


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        text=_dumps(body),
        status=status,
        content_type="application/json",
        headers=headers,
    )


_ROUTES = (
    "/stores",
    "/stores/{store}",
    "/stores/{store}/size",
    "/stores/{store}/keys?from=&to=&limit=",
    "/stores/{store}/keys/{key}",
    "/stores/{store}/owner/{key}",
    "/stores/{store}/windows?from=&to=&limit=",
    "/stores/{store}/windows/{key}?from=&to=",
)


def _unknown_store(name: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(
        text=json.dumps({"error": f"no store {name!r} is registered here"}),
        content_type="application/json",
    )


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """An unexpected error answers 500 with a JSON ``{"error"}`` naming it (and is logged),
    not aiohttp's text page; a key its store cannot encode answers 400, a path no route
    takes 404 and a method other than GET 405, each with a JSON ``{"error"}`` too."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        # aiohttp's own (no route, a method other than GET): JSON too, as every answer.
        kept = {h: exc.headers[h] for h in ("Allow", "Retry-After") if h in exc.headers}
        hint = f" (routes: {', '.join(_ROUTES)})" if exc.status == 404 else ""
        text = f"{request.method} {request.path}: {exc.reason}{hint}"
        return _json({"error": text}, exc.status, kept)
    except OwnershipNotReadyError as exc:
        # The ownership is starting (a GroupMembership before start() finished): the
        # key may well exist, retry as for a store that is restoring.
        return _json({"error": str(exc)}, 503, {"Retry-After": RETRY_AFTER})
    except KeySerdeError as exc:
        # The request's key, not the server, is wrong: a key its store cannot encode (a
        # str for an int-keyed store without a key parser, say).
        store = request.match_info.get("store")
        hint = (
            f" (give StateServer key_parsers={{{store!r}: ...}} to decode keys from text)"
            if store is not None and store not in request.app[_PARSERS]
            else ""
        )
        return _json({"error": f"{exc}{hint}"}, 400)
    except Exception as exc:
        log.exception("queryable state: %s %s failed", request.method, request.path)
        return _json({"error": f"{request.method} {request.path} failed: {exc!r}"}, 500)


class StateServer:
    """Serves ``registry`` over HTTP on ``host:port`` (port 0: a free one; see
    :attr:`url` once started). Runs in the event loop that calls :meth:`start`: the one
    the streams run in, so a query reads a store between two elements, never during one.

    Use ``async with StateServer(registry_of(mat)) as server: ...`` or ``await
    server.start()`` / ``await server.stop()``. ``endpoint`` is this member's base URL
    as other members and clients reach it (default: :attr:`url`); a redirect for a key
    owned by ``endpoint`` itself is never sent.
    """

    def __init__(
        self,
        registry: StateRegistry,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        key_parsers: Mapping[str, Callable[[str], Any]] | None = None,
        ownership: Ownership | None = None,
        endpoint: str | None = None,
    ) -> None:
        if not isinstance(registry, StateRegistry):
            raise TypeError(f"StateServer: expected a StateRegistry, got {registry!r}")
        parsers = dict(key_parsers or {})
        for name, parser in parsers.items():
            if not callable(parser):
                raise TypeError(
                    f"StateServer: the key parser of store {name!r} must be callable, "
                    f"got {parser!r}"
                )
        if ownership is not None and not callable(getattr(ownership, "owner_of", None)):
            raise TypeError(
                f"StateServer: ownership must have owner_of(store, key), got {ownership!r}"
            )
        self.registry = registry
        self.host = host
        self.port = port
        self.key_parsers = parsers
        self.ownership = ownership
        self._endpoint = endpoint
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> StateServer:
        """Start listening; returns the server."""
        if self._runner is not None:
            return self
        app = web.Application(middlewares=[_json_errors])
        app[_PARSERS] = self.key_parsers
        app.router.add_get("/stores", self._stores)
        app.router.add_get("/stores/{store}", self._size)
        app.router.add_get("/stores/{store}/size", self._size)
        app.router.add_get("/stores/{store}/keys", self._range)
        app.router.add_get("/stores/{store}/keys/{key}", self._key)
        app.router.add_get("/stores/{store}/owner/{key}", self._owner)
        app.router.add_get("/stores/{store}/windows", self._all_windows)
        app.router.add_get("/stores/{store}/windows/{key}", self._windows)
        self._runner, self._url = await start_app(app, self.host, self.port)
        return self

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._url is None:
            raise RuntimeError("StateServer: not started (await server.start())")
        return self._url

    @property
    def endpoint(self) -> str:
        """This member's base URL as published to others (default :attr:`url`)."""
        return self._endpoint if self._endpoint is not None else self.url

    # -- handlers ------------------------------------------------------------------------
    def _store(self, request: web.Request) -> str:
        name = request.match_info["store"]
        if name not in self.registry:
            raise _unknown_store(name)
        return name

    def _parse(self, store: str, text: str) -> Any:
        parser = self.key_parsers.get(store)
        if parser is None:
            return text
        try:
            return parser(text)
        except Exception as exc:
            raise web.HTTPBadRequest(
                text=json.dumps(
                    {"error": f"store {store!r}: key {text!r} refused by its key parser: {exc!r}"}
                ),
                content_type="application/json",
            ) from exc

    def _describe(self, name: str) -> dict[str, Any]:
        described = {
            "store": name,
            "partitions": self.registry.partitions(name),
            "size": self.registry.size(name),
            "ready": self.registry.is_ready(name),
        }
        if self.registry.is_windowed(name):
            views = self.registry.views(name)
            described["windows"] = getattr(views[0][1], "kind", None) if views else None
        return described

    def _check_kind(self, name: str, windowed: bool) -> None:
        """400 for a route of the other kind of store (key routes of a windowed store,
        window routes of a key-value one)."""
        if self.registry.is_windowed(name) == windowed:
            return
        if windowed:
            text = (
                f"store {name!r} is a key-value store: query /stores/{name}/keys/{{key}} "
                f"or /stores/{name}/keys?from=&to="
            )
        else:
            text = (
                f"store {name!r} is a windowed store: query /stores/{name}/windows/{{key}}"
                f"?from=&to= or /stores/{name}/windows?from=&to="
            )
        raise web.HTTPBadRequest(text=json.dumps({"error": text}), content_type="application/json")

    def _bounds(self, request: web.Request) -> tuple[Any, Any]:
        """The ``from``/``to`` times of a window route (400 for one that is not a
        number)."""
        out: list[Any] = []
        for what in ("from", "to"):
            text = request.query.get(what)
            if text is None:
                out.append(None)
                continue
            try:
                try:
                    bound: Any = int(text)
                except ValueError:
                    bound = float(text)
                if bound != bound:
                    raise ValueError("NaN")
            except ValueError:
                raise web.HTTPBadRequest(
                    text=json.dumps(
                        {"error": f"{what} must be a time in seconds (a number), got {text!r}"}
                    ),
                    content_type="application/json",
                ) from None
            out.append(bound)
        return out[0], out[1]

    def _elsewhere(self, request: web.Request, name: str, key: Any) -> web.Response | None:
        """With ``ownership``: the 307 to the member serving the partition of ``key``, or
        the 503 when no member does right now; None when this member answers."""
        if self.ownership is None:
            return None
        owned = self.ownership.owner_of(name, key)
        if owned is None:
            return None
        partition, owner = owned
        if owner == self.endpoint:
            served = self.registry.partitions(name)
            if None not in served and partition not in served:
                # Named here (by a stale record of this endpoint, say), but no store here
                # serves the partition: nobody does right now, as far as it is known.
                owner = None
        if owner is None:
            # No member serves the partition right now (a rebalance under way, or its
            # owner has not published yet): the key may well exist, so not a 404 (Kafka
            # Streams: NOT_AVAILABLE metadata).
            body = {
                "error": f"store {name!r}: no member serves partition {partition} "
                f"of key {key!r} right now (a rebalance is under way, or its owner "
                "has not published its endpoint yet; retry later)",
                "partition": partition,
            }
            return _json(body, 503, {"Retry-After": RETRY_AFTER})
        if owner == self.endpoint:
            return None
        body = {"store": name, "key": key, "partition": partition, "owner": owner}
        # The path and query as the client encoded them: the decoded ones (path_qs) name
        # another key ("a%2Fb" -> "a/b", "q%3Fx" -> "q?x").
        location = owner.rstrip("/") + request.rel_url.raw_path_qs
        return _json(body, 307, {"Location": location})

    def _check_ready(self, name: str) -> None:
        if not self.registry.is_ready(name):
            raise web.HTTPServiceUnavailable(
                text=json.dumps(
                    {
                        "error": f"store {name!r} is not ready here: it is restoring its "
                        "state (retry later)"
                    }
                ),
                content_type="application/json",
                headers={"Retry-After": RETRY_AFTER},
            )

    async def _stores(self, request: web.Request) -> web.Response:
        return _json({"stores": [self._describe(n) for n in self.registry.names()]})

    async def _size(self, request: web.Request) -> web.Response:
        return _json(self._describe(self._store(request)))

    def _unregistered(self, request: web.Request, windows: bool) -> web.Response | None:
        """With ``ownership``, for a key (or window) route of a store not registered here
        (this member serves no partition of it right now: all revoked in a rebalance,
        none assigned yet, more members than partitions): the 307 to the key's owner or
        the 503, not the 404 of an unknown store, which a client reads as "no such key";
        that 404 only when the ownership does not know the store either. None for a
        store registered here."""
        name = request.match_info["store"]
        if name in self.registry or self.ownership is None:
            return None
        key = self._parse(name, request.match_info["key"])
        if windows:
            self._bounds(request)  # 400 here for a bound that is not a number
        routed = self._elsewhere(request, name, key)
        if routed is None:
            raise _unknown_store(name)
        return routed

    async def _key(self, request: web.Request) -> web.Response:
        routed = self._unregistered(request, windows=False)
        if routed is not None:
            return routed
        name = self._store(request)
        self._check_kind(name, False)
        text = request.match_info["key"]
        key = self._parse(name, text)
        routed = self._elsewhere(request, name, key)
        if routed is not None:
            return routed
        self._check_ready(name)
        value = self.registry.get(name, key, _MISSING)
        if value is _MISSING:
            return _json({"error": f"store {name!r} has no value for key {key!r} here"}, 404)
        return _json({"store": name, "key": key, "value": value})

    async def _range(self, request: web.Request) -> web.Response:
        name = self._store(request)
        self._check_kind(name, False)
        q = request.query
        start = self._parse(name, q["from"]) if "from" in q else None
        end = self._parse(name, q["to"]) if "to" in q else None
        limit = _limit(q)
        if isinstance(limit, web.Response):
            return limit
        self._check_ready(name)
        items = [[k, v] for k, v in self.registry.range(name, start, end, limit)]
        return _json({"store": name, "items": items})

    async def _windows(self, request: web.Request) -> web.Response:
        routed = self._unregistered(request, windows=True)
        if routed is not None:
            return routed
        name = self._store(request)
        self._check_kind(name, True)
        key = self._parse(name, request.match_info["key"])
        time_from, time_to = self._bounds(request)
        routed = self._elsewhere(request, name, key)
        if routed is not None:
            return routed
        self._check_ready(name)
        windows = self.registry.fetch(name, key, time_from, time_to)
        items = [[w.start, w.end, w.value] for w in windows]
        return _json({"store": name, "key": key, "items": items})

    async def _all_windows(self, request: web.Request) -> web.Response:
        name = self._store(request)
        self._check_kind(name, True)
        time_from, time_to = self._bounds(request)
        q = request.query
        limit = _limit(q)
        if isinstance(limit, web.Response):
            return limit
        self._check_ready(name)
        windows = self.registry.fetch_all(name, time_from, time_to, limit)
        items = [[w.key, w.start, w.end, w.value] for w in windows]
        return _json({"store": name, "items": items})

    async def _owner(self, request: web.Request) -> web.Response:
        name = self._store(request)
        key = self._parse(name, request.match_info["key"])
        if self.ownership is None:
            return _json({"error": "this server has no ownership metadata"}, 404)
        owned = self.ownership.owner_of(name, key)
        if owned is None:
            return _json(
                {
                    "store": name,
                    "key": key,
                    "partition": None,
                    "owner": self.endpoint,
                    "local": True,
                }
            )
        partition, owner = owned
        return _json(
            {
                "store": name,
                "key": key,
                "partition": partition,
                "owner": owner,
                "local": owner == self.endpoint,
            }
        )

    def __repr__(self) -> str:
        where = self._url or "not started"
        return f"<StateServer {where}>"

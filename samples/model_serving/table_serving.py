"""Model serving as a stream-table join: models per data type from a global KTable,
statistics per data type in a store, and the tutorial's HTTP endpoints.

::

    models topic (key: data type, value: model message) ──▶ Tables.global_table ──▶ KTable
                                                                                    │ join
    (data_type, DataRecord) ──▶ join_table(models, key=data type) ──▶ stateful_map_by_key
                                      (score with that type's model)        (stats store)
                                                                                 │
                                                                      Scored ─────┘──▶ downstream

- The models topic is compacted and keyed by data type ("red", "white"): the latest model
  of each type is the table's value; a tombstone retires a type. Every instance reads all
  of it (a global table), so it knows every model at start (``await models.ready()``).
- :func:`scoring_flow` joins each ``(data_type, record)`` with its type's model (an inner
  join: records of a type without a model go to ``missing`` or are dropped and counted)
  and scores it; a model message that does not parse is rejected (logged, counted in the
  stats) and the type's previous valid model keeps serving, as in the tutorial.
- The statistics per data type (model name, description, since, usage count, scoring
  duration min/max/mean in milliseconds, unscored count) live in a store declared by the
  caller: with ``Stores.persistent`` they survive a restart; they restart from zero when
  a type's model changes (``since`` is when the new model served its first record).
- :class:`ServingApi` serves ``GET /models``, ``GET /state`` and ``GET /state/{dataType}``
  as JSON (aiohttp, the ``http`` extra) from the stream's event loop.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from reactive import Flow, Keep
from reactive.state import BytesStore, MsgpackSerde, StoreContext, StoreLayer, Stores, StoreSpec
from reactive.state.http import start_app

from .models import Model, ModelValidationError, parse_model
from .records import DataRecord

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["ModelCache", "Scored", "ServingApi", "scorer", "scoring_flow", "stats_updater"]

log = logging.getLogger("samples.model_serving")


@dataclass(frozen=True)
class Scored:
    """One record scored (``score`` set) or not (``score`` None, ``reason`` says why)."""

    data_type: str
    record_id: str | int
    model: str
    version: int
    score: float | None
    duration_ms: float
    at_ms: int
    reason: str | None = None


class ModelCache:
    """Parsed models per data type: a model message is parsed once, when its bytes first
    show up; bytes that do not parse are rejected (counted in ``rejected``) and the type's
    last valid model stays.

    A cache sees the bytes it is asked about (a join, ``GET /models``); give the table the
    store of :meth:`table_store` and it sees every model message the table takes, so a
    valid model followed at once by a broken one still serves.
    """

    def __init__(self) -> None:
        self._raw: dict[str, bytes] = {}
        self._model: dict[str, Model] = {}
        self.rejected: dict[str, int] = {}
        self.loaded: dict[str, int] = {}
        """Valid model messages parsed, per data type."""
        self._errors: dict[str, str] = {}

    def model(self, data_type: str, raw: bytes) -> Model | None:
        """The model serving ``data_type`` given the table's current bytes, or None."""
        if self._raw.get(data_type) != raw:
            self._raw[data_type] = raw
            try:
                self._model[data_type] = parse_model(raw)
                self.loaded[data_type] = self.loaded.get(data_type, 0) + 1
                self._errors.pop(data_type, None)
            except ModelValidationError as exc:
                self.rejected[data_type] = self.rejected.get(data_type, 0) + 1
                self._errors[data_type] = str(exc)
                log.warning("data type %r: model rejected: %s", data_type, exc)
        return self._model.get(data_type)

    def error(self, data_type: str) -> str | None:
        """Why the latest model message of ``data_type`` was rejected, if it was."""
        return self._errors.get(data_type)

    def table_store(self, name: str) -> StoreSpec[Any, Any]:
        """An in-memory store for a table of model messages (``Tables.global_table(...,
        store=cache.table_store(name))``) that parses each message through this cache as
        the table writes it."""

        def layer(engine: BytesStore, context: StoreContext) -> BytesStore:
            return _ObservedModels(engine, self)

        return Stores.in_memory(name).with_layer(layer)


class _ObservedModels(StoreLayer):
    """A table store's layer: each model message written goes through the cache."""

    def __init__(self, inner: BytesStore, cache: ModelCache) -> None:
        super().__init__(inner)
        self.cache = cache
        self.serde = MsgpackSerde()  # the store's default key and value serde

    def _observe(self, ops: Sequence[tuple[bytes, bytes | None]]) -> None:
        for key, value in ops:
            if value is not None:
                data_type, raw = self.serde.from_bytes(key), self.serde.from_bytes(value)
                if isinstance(data_type, str) and isinstance(raw, bytes):
                    self.cache.model(data_type, raw)

    def put(self, key: bytes, value: bytes) -> None:
        """As the store's, then parse the model."""
        self.inner.put(key, value)
        self._observe(((key, value),))

    def write(self, ops: Sequence[tuple[bytes, bytes | None]]) -> None:
        """As the store's, then parse the models."""
        self.inner.write(ops)
        self._observe(ops)


def _describe(model: Model) -> str:
    return f"{model.type} model {model.name!r} version {model.version}"


def scorer(cache: ModelCache, clock: Callable[[], int]) -> Callable[[Any, bytes], Scored]:
    """``score((data_type, record), model_bytes)``: the record scored with the model those
    bytes parse to (through ``cache``), or unscored with the reason (``clock``: epoch ms)."""

    def score(element: tuple[str, DataRecord], raw: bytes) -> Scored:
        data_type, record = element
        model = cache.model(data_type, raw)
        if model is None:
            reason = cache.error(data_type) or "no valid model"
            return Scored(data_type, record.id, "", 0, None, 0.0, clock(), reason)
        start = time.perf_counter_ns()
        value = model.score(record.features)
        elapsed_ms = (time.perf_counter_ns() - start) / 1e6
        return Scored(data_type, record.id, model.name, model.version, value, elapsed_ms, clock())

    return score


def stats_updater(
    cache: ModelCache,
) -> Callable[[Any, Scored], tuple[dict[str, Any], Scored]]:
    """``update(stats_or_None, scored) -> (new_stats, scored)``: one data type's statistics
    after ``scored`` (a ``stateful_map_by_key`` function). A record of another model than the
    statistics' starts them again; an unscored record counts in ``unscored``."""

    def update(stats: dict[str, Any] | None, s: Scored) -> tuple[dict[str, Any], Scored]:
        if s.score is None:
            new = dict(stats) if stats is not None else _empty(s.data_type)
            new["unscored"] += 1
            return new, s
        if stats is None or stats["name"] != s.model or stats["version"] != s.version:
            model = cache._model[s.data_type]
            stats = {
                **_empty(s.data_type),
                "name": s.model,
                "version": s.version,
                "description": _describe(model),
                "since": s.at_ms,
            }
        n = stats["usage"] + 1
        d = s.duration_ms
        new = {
            **stats,
            "usage": n,
            "duration_min": d if stats["duration_min"] is None else min(stats["duration_min"], d),
            "duration_max": d if stats["duration_max"] is None else max(stats["duration_max"], d),
            "duration_mean": stats["duration_mean"] + (d - stats["duration_mean"]) / n,
        }
        return new, s

    return update


def _empty(data_type: str) -> dict[str, Any]:
    return {
        "data_type": data_type,
        "name": "",
        "version": 0,
        "description": "",
        "since": None,
        "usage": 0,
        "duration_min": None,
        "duration_max": None,
        "duration_mean": 0.0,
        "unscored": 0,
    }


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def scoring_flow(
    models: Any,
    stats: StoreSpec[Any, Any],
    cache: ModelCache | None = None,
    *,
    missing: Any = None,
    clock: Callable[[], int] = _now_ms,
) -> Flow[tuple[str, DataRecord], Scored, Any]:
    """``(data_type, record)`` in, :class:`Scored` out, scored with the model of its data
    type in ``models`` (a KTable or any read-only view of model message bytes by data
    type); statistics per data type kept in ``stats``. Materializes the stats'
    ``StoreView``. Records of a type without a model go to ``missing`` (a Sink) or are
    dropped (counted in the DEBUG log of ``join_table``).
    """
    cache = cache if cache is not None else ModelCache()
    joined = Flow[tuple[str, DataRecord]]().join_table(
        models, key=lambda e: e[0], combine=scorer(cache, clock), missing=missing
    )
    flow: Flow[tuple[str, DataRecord], Scored, Any] = joined.stateful_map_by_key(
        stats, lambda s: s.data_type, stats_updater(cache), Keep.right
    )
    return flow


class ServingApi:
    """``GET /models``, ``GET /state`` and ``GET /state/{dataType}`` over HTTP (JSON).

    ``/models``: the model of each data type in the table (name, version, type,
    description; or the reason its latest message was rejected). ``/state``: the
    statistics of every data type; ``/state/{dataType}``: one type's (404 if it has none).
    """

    def __init__(
        self, models: Any, stats: Any, cache: ModelCache, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.models = models
        self.stats = stats
        self.cache = cache
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> ServingApi:
        """Start listening (``url`` then says where)."""
        app = web.Application()
        app.router.add_get("/models", self._models)
        app.router.add_get("/state", self._state)
        app.router.add_get("/state/{data_type}", self._state_of)
        self._runner, self.url = await start_app(app, self.host, self.port)
        return self

    async def stop(self) -> None:
        """Stop listening."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @staticmethod
    def _json(body: Any, status: int = 200) -> web.Response:
        return web.Response(text=json.dumps(body), status=status, content_type="application/json")

    async def _models(self, request: web.Request) -> web.Response:
        out: dict[str, Any] = {}
        for data_type, raw in self.models.items():
            model = self.cache.model(data_type, raw)
            entry: dict[str, Any] = {"rejected": self.cache.error(data_type)}
            if model is not None:
                entry.update(
                    name=model.name,
                    version=model.version,
                    type=model.type,
                    description=_describe(model),
                )
            out[data_type] = entry
        return self._json(out)

    async def _state(self, request: web.Request) -> web.Response:
        return self._json(dict(self.stats.items()))

    async def _state_of(self, request: web.Request) -> web.Response:
        data_type = request.match_info["data_type"]
        stats = self.stats.get(data_type)
        if stats is None:
            return self._json({"error": f"no statistics for data type {data_type!r}"}, 404)
        return self._json(stats)

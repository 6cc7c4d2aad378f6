"""The model publisher: writes model messages to the model topic on a schedule.

A schedule is a sequence of ``(delay_seconds, model)`` or ``(delay_seconds, model,
key)`` steps: each model is published ``delay_seconds`` after the previous one, keyed by
``key`` (the table-based service keys models by data type) or else by the model's name.
:func:`demo_schedule` is the ``--stage`` demo's: a first model at once, an invalid model
(the scorer must refuse it and keep serving), then an update to another model type;
:func:`table_demo_schedule` the table-based demo's, keyed by data type. The stream::

    schedule -> flat_map_concat(single(step).initial_delay(delay)) -> encode
        -> ProducerRecord(model_topic, key=key or model name) -> Producer.plain_sink
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from connectors.kafka import Producer, ProducerRecord, ProducerSettings
from reactive import Keep, KillSwitches, RunnableGraph, Source, UniqueKillSwitch

from .models import (
    LINEAR_REGRESSION,
    Model,
    ModelMessage,
    encode_model,
    example_linear_model,
    example_tree_model,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Sequence

__all__ = [
    "PublisherHandle",
    "demo_schedule",
    "model_bytes",
    "model_publisher",
    "table_demo_schedule",
]

ScheduleStep = (
    tuple[float, "bytes | ModelMessage | Model"] | tuple[float, "bytes | ModelMessage | Model", str]
)


def model_bytes(model: bytes | ModelMessage | Model) -> bytes:
    """The wire form (msgpack) of ``model``: bytes as given, a message or model encoded."""
    if isinstance(model, bytes):
        return model
    if isinstance(model, ModelMessage):
        return encode_model(model)
    return encode_model(model.to_message())  # type: ignore[attr-defined]


def _key(model: bytes | ModelMessage | Model) -> bytes | None:
    return None if isinstance(model, bytes) else model.name.encode()


def demo_schedule(switch_after: float) -> list[ScheduleStep]:
    """The demo's models: linear v1 now, a bad model halfway, the tree ensemble v2 at
    ``switch_after`` seconds."""
    bad = ModelMessage("wine-linear", 2, LINEAR_REGRESSION, {"weights": [1.0, 2.0]})
    return [
        (0.0, example_linear_model(1)),
        (switch_after / 2, bad),
        (switch_after / 2, example_tree_model(2)),
    ]


def table_demo_schedule(switch_after: float) -> list[ScheduleStep]:
    """The table-based demo's models, keyed by data type: the linear model v1 for ``red``
    now, an invalid ``red`` model at ``switch_after / 2`` seconds (refused: v1 keeps
    serving), the tree ensemble v1 for ``white`` at ``switch_after`` (``white`` records
    wait unscored until then).

    Every run publishes the same models (the embedded broker starts empty), so a
    restarted demo serves the models its statistics were kept for, and they carry on.
    """
    bad = ModelMessage("wine-linear", 2, LINEAR_REGRESSION, {"weights": [1.0, 2.0]})
    return [
        (0.0, example_linear_model(1), "red"),
        (switch_after / 2, bad, "red"),
        (switch_after / 2, example_tree_model(1), "white"),
    ]


@dataclass
class PublisherHandle:
    """A running publisher: ``done`` completes once every model was acknowledged."""

    kill_switch: UniqueKillSwitch
    done: Awaitable[Any]

    async def stop(self) -> None:
        """Stop publishing (models not yet due are dropped) and wait for the producer."""
        self.kill_switch.shutdown()
        await self.done


def model_publisher(
    bootstrap_servers: str,
    topic: str,
    schedule: Sequence[ScheduleStep],
    *,
    producer_settings: ProducerSettings | None = None,
) -> RunnableGraph[PublisherHandle]:
    """Publish the models of ``schedule`` to ``topic``, each after its delay."""
    settings = producer_settings or ProducerSettings(bootstrap_servers)
    steps = list(schedule)

    def delayed(step: ScheduleStep) -> Source[Any, Any]:
        src = Source.single(step)
        return src.initial_delay(step[0]) if step[0] > 0 else src

    def record(step: ScheduleStep) -> ProducerRecord[bytes | None, bytes]:
        model = step[1]
        key = step[2].encode() if len(step) == 3 else _key(model)
        return ProducerRecord(topic, model_bytes(model), key=key)

    return (
        Source.from_iterable(steps)
        .flat_map_concat(delayed)
        .via_mat(KillSwitches.single(), Keep.right)
        .map(record)
        .to_mat(Producer.plain_sink(settings), Keep.both)
        .map_materialized_value(lambda m: PublisherHandle(m[0], m[1]))
    )

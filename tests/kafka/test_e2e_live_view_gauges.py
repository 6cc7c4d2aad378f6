"""End to end: the live view of a Kafka service before its consumer joined its group.

A consumer source reports ``kafka_consumer_lag`` per partition; before the group
assigned it any partition (the first seconds of every service) the figure is an empty
mapping, which the live view drew as ``kafka_consumer_lag 0 ()``: a lag of 0 reads as
"caught up" while nothing was read yet. It now draws ``kafka_consumer_lag (none)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from rich.console import Console

from connectors.kafka import Consumer, Subscriptions
from reactive import Keep, Sink
from reactive.observe.live_view import LiveView
from tests.kafka.support import settings

if TYPE_CHECKING:
    from reactive import Materializer

pytestmark = pytest.mark.kafka


async def test_a_consumer_without_partitions_shows_no_lag_figure(
    kafka_bootstrap: str, kafka_topic: str, kafka_group_id: str, materializer: Materializer
) -> None:
    control, _done = (
        Consumer.plain_source(
            settings(kafka_bootstrap, kafka_group_id), Subscriptions.topics(kafka_topic)
        )
        .named("orders")
        .to_mat(Sink.ignore(), Keep.both)
        .named("service")
        .run(materializer)
    )
    try:
        gauges = next(
            s.gauges for s in materializer.snapshot().graph("service").stages if s.id == "orders"
        )
        assert gauges["kafka_consumer_lag"] == {}  # not assigned yet: no partition
        console = Console(record=True, width=200)
        console.print(LiveView(materializer, "service").frame())
        text = console.export_text()
        assert "kafka_consumer_lag (none)" in text, text
        assert "kafka_consumer_lag 0" not in text
    finally:
        await control.shutdown()

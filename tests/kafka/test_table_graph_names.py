"""A KTable's graph is named after the table (``table:<store name or topic>``), so its
snapshot and its exported series (Prometheus' ``graph`` label) say which table they are,
instead of ``graph-<n>`` with a number that depends on start order."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.kafka.serde import str_deserializer
from connectors.kafka.tables import Tables
from connectors.kafka.testkit import produce_values
from reactive import Materializer
from reactive.state import Stores
from tests.kafka.support import settings

pytestmark = pytest.mark.kafka


def graph_labels(materializer: Materializer) -> set[str]:
    """The ``graph`` label of every series the Prometheus collector exports."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from reactive.observe.prometheus import register

    registry = CollectorRegistry()
    register(materializer, registry)
    text = generate_latest(registry).decode()
    return {
        s.labels["graph"]
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if "graph" in s.labels
    }


async def test_table_graphs_are_named_after_their_table(
    kafka_bootstrap: str, kafka_topic_factory: Any, kafka_group_id: str
) -> None:
    pytest.importorskip("prometheus_client")
    topic = await kafka_topic_factory(prefix="prices")
    other = await kafka_topic_factory(prefix="rates")
    await produce_values(kafka_bootstrap, topic, ["1", "2"])
    s = settings(kafka_bootstrap).with_key_deserializer(str_deserializer)
    async with Materializer(name="tables") as mat:
        by_topic = Tables.global_table(s, topic).run(mat)
        by_store = Tables.global_table(s, other, Stores.in_memory("fx")).run(mat)
        partitioned = Tables.table(s.with_group_id(kafka_group_id), topic).run(mat)
        await by_topic.ready(timeout=15)
        await by_store.ready(timeout=15)
        names = {g.name for g in mat.snapshot().graphs}
        assert {f"table:{topic}", "table:fx"} <= names, names
        assert mat.snapshot().graph(f"table:{topic}").stages
        assert not [n for n in names if n.startswith("graph-")], names
        labels = graph_labels(mat)
        assert {f"table:{topic}", "table:fx"} <= labels, labels
        assert not [n for n in labels if n.startswith("graph-")], labels
        for table in (by_topic, by_store, partitioned):
            await table.stop()


def test_graph_name_of_a_co_partitioned_part() -> None:
    from connectors.kafka.tables import _graph_name

    assert _graph_name("orders", None) == "table:orders"
    assert _graph_name("orders", Stores.in_memory("o")) == "table:o"
    assert _graph_name("orders", None, 3) == "table:orders/3"

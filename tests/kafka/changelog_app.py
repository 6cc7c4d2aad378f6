"""The counting application of the changelog tests (in process, and as a member process:
``python -m tests.kafka.changelog_app``): count records per key, one store instance per
assigned partition, changelogged, offsets committed after the changelog acks."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from connectors.kafka import (
    Committer,
    CommitterSettings,
    Consumer,
    ConsumerSettings,
    DrainingControl,
    ProducerSettings,
    Subscriptions,
)
from connectors.kafka.state import ChangeloggedStore, changelogged
from connectors.kafka.testkit import TEST_CONSUMER_PROPERTIES
from reactive.state import Stores, StoreView

if TYPE_CHECKING:
    from reactive import Materializer, Source

#: Commit what the changelog acknowledged every 0.1 s (Kafka Streams' commit interval
#: under exactly-once): a revoked partition's last offsets are otherwise not committed
#: before it moves, and its next owner re-processes them.
COMMITTER = CommitterSettings(max_interval=0.1)


def consumer_settings(bootstrap: str, group: str) -> ConsumerSettings:
    return ConsumerSettings(
        bootstrap,
        group,
        auto_offset_reset="earliest",
        properties={**TEST_CONSUMER_PROPERTIES, "fetch_max_wait_ms": 50},
        stop_timeout=2.0,
        connect_timeout=5.0,
        max_buffered_records=2000,
    )


def counts_store(
    bootstrap: str, group: str, store_dir: str | None = None, name: str = "counts"
) -> ChangeloggedStore:
    spec = Stores.persistent(name, store_dir) if store_dir else Stores.in_memory(name)
    return changelogged(
        spec, ProducerSettings(bootstrap, linger_ms=5), consumer_settings(bootstrap, group)
    )


def run_counting(
    bootstrap: str,
    topic: str,
    group: str,
    store: ChangeloggedStore,
    views: dict[int, StoreView[Any, Any]] | None = None,
    log_fd: int | None = None,
    materializer: Materializer | None = None,
) -> DrainingControl[Any]:
    """Run the application; ``views`` gets each partition's store view; ``log_fd`` gets a
    line ``partition offset key`` per record counted (written before it is counted)."""

    def count(n: int, record: Any) -> int:
        if log_fd is not None:
            os.write(log_fd, b"%d %d %s\n" % (record.partition, record.offset, record.key))
        return n + 1

    def keep_view(tp: Any) -> Any:
        def keep(view: StoreView[Any, Any]) -> None:
            if views is not None:
                views[tp.partition] = view

        return keep

    def per_partition(pair: Any) -> Source[Any, Any]:
        tp, source = pair
        return (
            source.as_source_with_context(lambda m: m.committable_offset)
            .map(lambda m: m.record)
            .aggregate_by_key(
                store.for_partition(tp),
                key=lambda r: r.key.decode(),
                zero=lambda: 0,
                aggregate=count,
            )
            .map_materialized_value(keep_view(tp))
            .as_source()
        )

    settings = consumer_settings(bootstrap, group)
    return (
        Consumer.committable_partitioned_source(
            settings,
            Subscriptions.topics(topic).with_rebalance_listener(
                store.rebalance_listener(COMMITTER)
            ),
        )
        .flat_map_merge(64, per_partition)
        .to_mat(Committer.sink_with_offset_context(COMMITTER), DrainingControl)
        .run(materializer)
    )


async def _member(args: argparse.Namespace) -> None:
    store = counts_store(args.bootstrap, args.group, args.store_dir)
    fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    control = run_counting(args.bootstrap, args.topic, args.group, store, log_fd=fd)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("started", flush=True)
    # The status file: the partitions assigned now, and the last metrics of every
    # partition this member ever had (a revoked partition's store closes and leaves
    # ``store.metrics()``, but what it restored is still asked about).
    peak: dict[int, Any] = {}
    while not stop.is_set():
        now = store.metrics()
        peak.update(now)
        with open(args.status + ".tmp", "w") as f:
            json.dump({"assigned": sorted(now), "metrics": {str(p): m for p, m in peak.items()}}, f)
        os.replace(args.status + ".tmp", args.status)
        try:
            await asyncio.wait_for(stop.wait(), 0.1)
        except TimeoutError:
            pass
    await control.drain_and_shutdown()
    await store.wait_closed()
    print("drained", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("bootstrap", "topic", "group", "log", "status"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--store-dir")
    asyncio.run(_member(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

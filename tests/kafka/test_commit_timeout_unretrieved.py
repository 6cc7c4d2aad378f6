"""A commit that times out leaves no aiokafka task whose exception is never retrieved.

aiokafka's ``commit_offsets`` runs each OffsetCommit request in a task under
``asyncio.shield``. When the consumer's commit wrapper gives up (``commit_timeout``) it
cancels ``commit_offsets``, the shield lets the request task go on (and takes its own
done callback off it), and when that request later fails (the connection breaks, the
coordinator is marked dead) nobody retrieved its exception: asyncio logged ERROR "Task
exception was never retrieved" with a traceback through aiokafka's
``_do_commit_offsets``, next to the library's own clear ``CommitTimeoutError`` (seen in
the e2e payments service: two such ERRORs when a member was stopped with
``drain_and_shutdown`` during a broker outage).

The committer (connectors/kafka/_stages/consumer_commits.py) now retrieves the outcome of
aiokafka's request tasks still running when it gives a commit up (timed out, closing,
cancelled).
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from typing import Any

import pytest

from connectors.kafka import CommitTimeoutError, Consumer, ConsumerSettings, Subscriptions
from connectors.kafka.testkit import (
    TEST_CONSUMER_PROPERTIES,
    create_topic,
    produce_values,
    proxied_broker,
    unique_group_id,
    unique_topic_name,
)
from reactive import Keep, Sink

pytestmark = pytest.mark.kafka


async def test_a_timed_out_commit_leaves_no_unretrieved_task_exception() -> None:
    async with proxied_broker() as (broker, proxy):
        servers = broker.bootstrap_servers
        topic = await create_topic(servers, unique_topic_name("commit-timeout"), 1)
        await produce_values(servers, topic, ["a"], partition=0)
        settings = ConsumerSettings(
            servers,
            unique_group_id(),
            auto_offset_reset="earliest",
            properties=TEST_CONSUMER_PROPERTIES,
            commit_timeout=0.3,
            close_timeout=0.5,
        )
        got: list[Any] = []
        control, _done = (
            Consumer.committable_source(settings, Subscriptions.topics(topic))
            .to_mat(Sink.foreach(got.append), Keep.both)
            .run()
        )
        while not got:
            await asyncio.sleep(0.02)
        contexts: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: contexts.append(context))
        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGSTOP)  # the broker answers nothing
        try:
            with pytest.raises(CommitTimeoutError):
                await got[0].committable_offset.commit()
            proxy.cut()  # the OffsetCommit request in flight fails now
            await asyncio.sleep(0.2)
        finally:
            os.kill(broker.pid, signal.SIGCONT)
        await control.shutdown()
        gc.collect()
        await asyncio.sleep(0)
        loop.set_exception_handler(None)
        unretrieved = [c for c in contexts if "never retrieved" in str(c.get("message"))]
        assert unretrieved == []

"""The Redis-backed stages against a real server: idempotent appends, markers kept alive,
and a redelivered task publishing once (dedup has its own file: test_dedup.py)."""

from __future__ import annotations

import json
import uuid
from zoneinfo import ZoneInfo

import pytest
import redis

from config.settings import load_settings
from pipelines.documents import load_file
from pipelines.ingest import IngestOptions, ingest_documents
from pipelines.publish import Append, append_once
from pipelines.rules import rules_from_dir
from tests.helpers import SEED, WorkerProcess, wait_for

pytestmark = pytest.mark.integration


def test_append_once_adds_one_entry_per_key(redis_client: redis.Redis) -> None:
    item = Append("ingest:test", "k1", {"a": "1"})
    first = append_once(redis_client, [item], ttl=60, delivery_id="d1")[0]
    retry = append_once(redis_client, [item], ttl=60, delivery_id="d1")[0]
    other = append_once(redis_client, [item], ttl=60, delivery_id="d2")[0]
    assert first.created and first.by_this_delivery
    assert not retry.created and retry.by_this_delivery  # a retry of the same delivery
    assert not other.created and not other.by_this_delivery  # the item seen again
    assert first.entry_id == retry.entry_id == other.entry_id
    assert redis_client.xlen("ingest:test") == 1


def test_seeing_an_item_again_keeps_its_marker_for_another_horizon(
    redis_client: redis.Redis,
) -> None:
    item = Append("ingest:test", "k2", {"a": "1"})
    append_once(redis_client, [item], ttl=600, delivery_id="d1")
    marker = "ingest:published:k2"
    redis_client.expire(marker, 5)  # nearly expired
    append_once(redis_client, [item], ttl=600, delivery_id="d2")
    assert redis_client.ttl(marker) > 590
    assert redis_client.xlen("ingest:test") == 1


def ingest_options() -> IngestOptions:
    return IngestOptions(
        rules=rules_from_dir(load_settings({}).boilerplate_dir),
        default_tz=ZoneInfo("UTC"),
        dedup_ttl=600,
        articles_stream="ingest:articles",
        duplicates_stream="ingest:duplicates",
        dead_stream="ingest:dead",
    )


def test_a_batch_retried_after_a_crash_publishes_once_and_reports_published(
    redis_client: redis.Redis,
) -> None:
    """The task appended its entries, then died before recording its outcomes and being
    acknowledged; the broker delivers it again (same task id)."""
    messages = [load_file(SEED).to_message()]
    first = ingest_documents(redis_client, messages, ingest_options(), delivery_id="task-1")
    again = ingest_documents(redis_client, messages, ingest_options(), delivery_id="task-1")
    assert [o.status for o in first] == [o.status for o in again] == ["published"]
    assert first[0].entry_id == again[0].entry_id
    assert redis_client.xlen("ingest:articles") == 1
    # Another delivery of the same document (a replay) is reported as what it is.
    later = ingest_documents(redis_client, messages, ingest_options(), delivery_id="task-2")
    assert later[0].status == "duplicate" and "already published" in (later[0].reason or "")


def test_a_task_delivered_twice_by_the_broker_publishes_once(
    redis_client: redis.Redis, celery_worker: WorkerProcess, service_env: dict[str, str]
) -> None:
    """The same task message twice through a real worker, as the broker redelivers it
    after a visibility timeout: one stream entry, both deliveries report it published."""
    from celery import Celery

    app = Celery(broker=service_env["REDIS_URL"])
    message = load_file(SEED).to_message()
    task_id = str(uuid.uuid4())
    for _ in range(2):
        app.send_task(
            "ingest.documents",
            args=[[message]],
            kwargs={"run_id": task_id},
            task_id=task_id,
            queue="ingest",
        )

    def deliveries() -> int:
        lines = [
            json.loads(line)
            for line in celery_worker.log_text().splitlines()
            if line.startswith("{") and task_id in line
        ]
        return sum(1 for line in lines if line.get("event") == "document.published")

    wait_for(lambda: deliveries() == 2, timeout=30, what="both deliveries")
    assert redis_client.xlen("ingest:articles") == 1
    outcome = json.loads(next(iter(redis_client.hvals(f"ingest:run:{task_id}"))))
    assert outcome["status"] == "published"

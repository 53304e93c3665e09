"""Backpressure and retention with a real worker: while a consumer group's backlog is
above the high-water mark, document tasks put themselves off and the scheduler defers
polls; once the group catches up, everything goes through, once.

These run in database 1 of the session's Redis with a worker of their own (a small
high-water mark, a short delay), so the session worker never takes their tasks.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from pipelines.downstream import Consumer
from pipelines.publish import Append, append_once
from tests.feedserver import FeedServer
from tests.helpers import (
    WorkerProcess,
    clean_env,
    run_cli,
    session_database,
    start_worker,
    wait_for,
)
from worker.embedded_redis import EmbeddedRedis

pytestmark = pytest.mark.integration

ARTICLES = "ingest:articles"
HIGH_WATER = 20
DB = 1


@pytest.fixture
def db1(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    with session_database(redis_server.port, DB) as client:
        yield client


@pytest.fixture
def env(redis_server: EmbeddedRedis, tmp_path: Path) -> dict[str, str]:
    return clean_env(
        REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/{DB}",
        INGEST_DATA_DIR=str(tmp_path / "var"),
        INGEST_BACKLOG_HIGH_WATER=str(HIGH_WATER),
        INGEST_BACKPRESSURE_DELAY="1",
        INGEST_STREAM_MAX_LEN="10",
    )


@pytest.fixture
def worker(env: dict[str, str], tmp_path: Path, db1: redis.Redis) -> Iterator[WorkerProcess]:
    process = start_worker(env, tmp_path / "worker.log", name="backpressure", concurrency=1)
    yield process
    process.stop()


def fill_backlog(client: redis.Redis, count: int) -> None:
    """``count`` articles a group called ``slow`` has not read."""
    client.xgroup_create(ARTICLES, "slow", id="0", mkstream=True)
    append_once(
        client,
        [
            Append(ARTICLES, f"old-{i}", {"id": f"old-{i}", "article": json.dumps({"id": i})})
            for i in range(count)
        ],
        ttl=600,
        delivery_id="test",
    )


def documents(folder: Path, count: int) -> list[Path]:
    rng = random.Random(7)
    words = [
        "harbor",
        "council",
        "river",
        "village",
        "teacher",
        "market",
        "bridge",
        "garden",
        "winter",
        "museum",
    ]
    folder.mkdir()
    paths = []
    for i in range(count):
        body = "\n\n".join(
            " ".join(rng.choice(words) for _ in range(40)).capitalize() + "." for _ in range(4)
        )
        path = folder / f"doc{i}.txt"
        path.write_text(f"Story number {i} about the harbor\n\n{body}\n")
        paths.append(path)
    return paths


def events(worker: WorkerProcess, name: str) -> list[dict[str, object]]:
    lines = [x for x in worker.log_text().splitlines() if x.startswith("{")]
    return [e for e in map(json.loads, lines) if e.get("event") == name]


def drain(client: redis.Redis) -> int:
    return (
        Consumer(client, ARTICLES, "slow", "drainer", lambda e: None, block=0.1)
        .run(until_idle=0.3)
        .handled
    )


def test_tasks_wait_while_a_group_lags_then_publish_everything_once(
    db1: redis.Redis, env: dict[str, str], worker: WorkerProcess, tmp_path: Path
) -> None:
    fill_backlog(db1, HIGH_WATER + 5)
    sent = run_cli(
        "replay", *map(str, documents(tmp_path / "docs", 10)), "--batch-size", "5", env=env
    )
    assert sent.returncode == 0, sent.stderr
    wait_for(lambda: events(worker, "ingest.deferred"), 30, what="a deferred task")
    time.sleep(2.5)  # a few more turns of the delay
    assert db1.xlen(ARTICLES) == HIGH_WATER + 5  # nothing published meanwhile
    deferred = events(worker, "ingest.deferred")
    assert "group slow" in str(deferred[0]["reason"]) and len(deferred) >= 2
    # The waiting batches stay in the queue in Redis, not held by the worker as ETA
    # tasks: one in the worker's hands at most, the other waiting in the list.
    assert db1.hlen("unacked") <= 1 and db1.llen("ingest") >= 1

    status = run_cli("status", "--json", env=env)
    if status.returncode == 0:  # the screen names the pressure too
        assert "slow" in status.stdout

    assert drain(db1) == HIGH_WATER + 5
    wait_for(lambda: db1.xlen(ARTICLES) == HIGH_WATER + 15, 30, what="the deferred documents")
    assert drain(db1) == 10
    titles = [json.loads(f[b"article"]).get("title") for _, f in db1.xrange(ARTICLES)[-10:]]
    assert sorted(titles) == sorted(f"Story number {i} about the harbor" for i in range(10))


def test_the_scheduler_defers_polls_while_a_group_lags(
    db1: redis.Redis,
    env: dict[str, str],
    worker: WorkerProcess,
    feed_server: FeedServer,
) -> None:
    url = feed_server.route("/feed.xml", body=b"<rss version='2.0'><channel></channel></rss>")
    assert run_cli("feeds", "add", url, env=env).returncode == 0
    fill_backlog(db1, HIGH_WATER + 1)
    app = Celery(broker=env["REDIS_URL"])
    app.send_task("scheduler.tick", queue="scheduler")
    wait_for(lambda: db1.hget("ingest:scheduler", "deferred_reason"), 20, what="the deferral")
    assert events(worker, "scheduler.deferred")
    time.sleep(1)
    assert feed_server.hits("/feed.xml") == 0  # due, but not polled

    drain(db1)
    time.sleep(2.1)  # past the process's cached answer
    app.send_task("scheduler.tick", queue="scheduler")
    wait_for(lambda: feed_server.hits("/feed.xml") == 1, 20, what="the poll after the drain")
    assert db1.hget("ingest:scheduler", "deferred_reason") is None


def test_the_retention_task_trims_only_what_every_group_acknowledged(
    db1: redis.Redis, env: dict[str, str], worker: WorkerProcess
) -> None:
    fill_backlog(db1, 300)
    app = Celery(broker=env["REDIS_URL"])
    app.send_task("scheduler.retention", queue="scheduler")
    wait_for(lambda: events(worker, "stream.over_cap"), 20, what="the over-cap warning")
    assert db1.xlen(ARTICLES) == 300  # the slow group has read none of them
    assert events(worker, "stream.over_cap")[0]["held_by"] == "slow"
    drain(db1)
    app.send_task("scheduler.retention", queue="scheduler")
    wait_for(lambda: events(worker, "stream.trimmed"), 20, what="the trim")
    assert db1.xlen(ARTICLES) < 300

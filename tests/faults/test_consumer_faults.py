"""Fault tests of the downstream hand-off with real `ingest consume` processes: one
killed with SIGKILL between writing a batch and acknowledging it, and a sink that
always fails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from pipelines.publish import Append, append_once
from pipelines.streams import stream_progress
from tests.faults.conftest import RedisHolder, wait_written_to_aof
from tests.helpers import REPO, clean_env, jsonl_article_ids, run_cli, wait_for
from worker.embedded_redis import EmbeddedRedis

pytestmark = [pytest.mark.faults, pytest.mark.integration]

ARTICLES = "ingest:articles"

SINKS = """
import time
from pipelines.sinks import JsonlSink

class SlowJsonl(JsonlSink):
    # Writes (and fsyncs) the batch, then dawdles before the consumer acknowledges:
    # a kill lands between the two.
    def write(self, entries):
        super().write(entries)
        time.sleep(0.4)

def slow_jsonl(path):
    return SlowJsonl(__import__("pathlib").Path(path))

class Failing:
    def write(self, entries):
        raise ConnectionError("the search index refuses every write")
    def close(self):
        pass

def failing(arg):
    return Failing()
"""


def publish(client: redis.Redis, count: int) -> list[str]:
    ids = [f"article-{i:04d}" for i in range(count)]
    append_once(
        client,
        [
            Append(ARTICLES, i, {"id": i, "article": json.dumps({"id": i, "title": f"T {i}"})})
            for i in ids
        ],
        ttl=600,
        delivery_id="faults",
    )
    return ids


def consume(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "worker", "consume", *args],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.timeout(120)
def test_a_consumer_killed_mid_batch_loses_nothing_and_the_sink_has_each_article_once(
    redis_client: redis.Redis, service_env: dict[str, str], tmp_path: Path
) -> None:
    ids = publish(redis_client, 600)
    (tmp_path / "faultsinks.py").write_text(SINKS)
    env = {**service_env, "PYTHONPATH": str(tmp_path)}
    out = tmp_path / "articles.jsonl"
    common = ("--group", "archive", "--batch-size", "50", "--claim-idle", "1")
    first = consume(
        env, *common, "--name", "A", "--sink", f"faultsinks:slow_jsonl:{out}", log=tmp_path / "a"
    )
    try:
        wait_for(
            lambda: out.exists() and len(jsonl_article_ids(out)) >= 120, 60, what="a few batches"
        )
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    pending = redis_client.xpending(ARTICLES, "archive")
    assert pending["pending"] > 0  # it died holding a batch
    written_before = len(jsonl_article_ids(out))

    second = consume(
        env, *common, "--name", "B", "--sink", f"jsonl:{out}", "--until-idle", "3",
        log=tmp_path / "b",
    )  # fmt: skip
    assert second.wait(90) == 0, (tmp_path / "b").read_text()[-3000:]

    counts = Counter(jsonl_article_ids(out))
    assert sorted(counts) == ids  # every article ...
    assert max(counts.values()) == 1  # ... exactly once
    assert written_before < len(ids)
    assert redis_client.xpending(ARTICLES, "archive")["pending"] == 0
    log = (tmp_path / "b").read_text()
    assert "consumer.claimed" in log  # B took over A's batch


@pytest.mark.timeout(60)
def test_a_sink_that_always_fails_sends_each_entry_to_the_dead_letters_after_n_tries(
    redis_client: redis.Redis, service_env: dict[str, str], tmp_path: Path
) -> None:
    ids = publish(redis_client, 5)
    (tmp_path / "faultsinks.py").write_text(SINKS)
    env = {**service_env, "PYTHONPATH": str(tmp_path)}
    process = consume(
        env,
        *("--group", "index", "--sink", "faultsinks:failing", "--max-deliveries", "3"),
        *("--retry-backoff", "0.1", "--until-idle", "2"),
        log=tmp_path / "log",
    )
    assert process.wait(50) == 0, (tmp_path / "log").read_text()[-3000:]
    records = [json.loads(f[b"record"]) for _, f in redis_client.xrange("ingest:dead")]
    assert sorted(json.loads(r["fields"]["article"])["id"] for r in records) == ids
    assert {r["deliveries"] for r in records} == {3}
    assert all("refuses every write" in r["error"] for r in records)
    assert redis_client.xpending(ARTICLES, "index")["pending"] == 0
    assert redis_client.xlen(ARTICLES) == 5  # the entries stay for the other groups
    listed = run_cli("dead", "list", env=service_env)
    assert listed.stdout.count("refuses every write") == 5


@pytest.mark.timeout(120)
def test_a_consumer_waits_out_a_redis_restart_and_the_sink_has_each_article_once(
    own_redis: RedisHolder, tmp_path: Path
) -> None:
    """kill -9 of the Redis server (AOF, fsync every second) under a running consumer:
    it waits, reconnects to the restarted server, re-reads its own pending entries and
    finishes, each article in the sink once."""
    server = own_redis.server
    port, data = server.port, server.directory
    client = redis.Redis.from_url(server.url)
    ids = publish(client, 1500)
    (tmp_path / "faultsinks.py").write_text(SINKS)
    env = {**clean_env(REDIS_URL=server.url), "PYTHONPATH": str(tmp_path)}
    out = tmp_path / "articles.jsonl"
    process = consume(
        env,
        *("--group", "archive", "--name", "A", "--batch-size", "50"),
        *("--sink", f"faultsinks:slow_jsonl:{out}"),
        log=tmp_path / "log",
    )
    try:
        wait_for(
            lambda: out.exists() and len(jsonl_article_ids(out)) >= 200, 60, what="a few batches"
        )
        wait_written_to_aof(client)
        assert server.pid is not None and server.process is not None
        os.kill(server.pid, signal.SIGKILL)
        server.process.wait(10)
        client.close()
        time.sleep(1.5)
        restarted = EmbeddedRedis(data, port=port, appendonly=True)
        own_redis.replace(restarted)
        restarted.start()
        client = redis.Redis.from_url(restarted.url)

        def drained() -> bool:
            (group,) = stream_progress(client, ARTICLES).groups
            return group.lag == 0 and group.pending == 0

        wait_for(drained, 90, interval=0.5, what="the consumer to finish")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
        client.close()
    counts = Counter(jsonl_article_ids(out))
    assert sorted(counts) == ids and max(counts.values()) == 1
    log = (tmp_path / "log").read_text()
    assert "consumer.redis_unavailable" in log and "consumer.redis_back" in log

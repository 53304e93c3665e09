"""Idempotent publish under a forced retry: the task appends its articles, then loses
its Redis connection before it can finish (as a crash between XADD and the task's
acknowledgement would leave it). Celery retries the task with the same id; the retry
must add no second entry and still report the documents as published."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.faults.inject import write_sitecustomize
from tests.helpers import WorkerProcess, clean_env, run_cli, session_database, start_worker
from worker.embedded_redis import EmbeddedRedis

pytestmark = [pytest.mark.faults, pytest.mark.integration]

DB = 3

# After the real append, the first call of each delivery raises a connection error.
LOSE_CONNECTION_AFTER_APPEND = """
import sys
import redis

_failed = set()

def wrap(real):
    def append_once(client, appends, *, ttl, delivery_id):
        result = real(client, appends, ttl=ttl, delivery_id=delivery_id)
        if delivery_id not in _failed:
            _failed.add(delivery_id)
            print("injected: connection lost after XADD", delivery_id, file=sys.stderr, flush=True)
            raise redis.exceptions.ConnectionError("injected: connection lost after XADD")
        return result
    return append_once
"""


@pytest.fixture
def db(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    with session_database(redis_server.port, DB) as client:
        yield client


@pytest.fixture
def env(redis_server: EmbeddedRedis, tmp_path: Path) -> dict[str, str]:
    hook = write_sitecustomize(
        tmp_path / "hook",
        module="pipelines.publish",
        attr="append_once",
        wrapper=LOSE_CONNECTION_AFTER_APPEND,
    )
    return clean_env(
        REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/{DB}",
        INGEST_DATA_DIR=str(tmp_path / "var"),
        INGEST_TASK_RETRY_BACKOFF_MAX="1",
        PYTHONPATH=str(hook),
    )


@pytest.fixture
def worker(env: dict[str, str], tmp_path: Path, db: redis.Redis) -> Iterator[WorkerProcess]:
    process = start_worker(env, tmp_path / "worker.log", name="retry", concurrency=1)
    yield process
    process.stop()


@pytest.mark.timeout(90)
def test_a_task_retried_after_its_xadd_adds_no_second_entry(
    db: redis.Redis, env: dict[str, str], worker: WorkerProcess, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(3):
        words = " ".join(f"word{i}x{j}" for j in range(60))
        (folder / f"doc{i}.txt").write_text(f"Bulletin {i} of the day\n\n{words}.\n")

    result = run_cli("replay", str(folder), "--batch-size", "3", "--wait", env=env, timeout=80)
    assert result.returncode == 0, result.stdout + result.stderr

    titles = sorted(json.loads(f[b"article"])["title"] for _, f in db.xrange("ingest:articles"))
    assert titles == [f"Bulletin {i} of the day" for i in range(3)]  # once each
    log = worker.log_text()
    assert "injected: connection lost after XADD" in log  # the retry really happened
    (retry,) = [
        json.loads(line)
        for line in log.splitlines()
        if line.startswith("{") and '"task.retry"' in line
    ]
    assert retry["documents"] == 3 and "connection lost after XADD" in retry["error"]
    assert "replay" in result.stdout and "3" in result.stdout
    summary = result.stdout.splitlines()
    row = next(line for line in summary if line.strip().startswith("│") and "3" in line)
    assert row.split("│")[1].strip() == "3"  # published 3, reported as published

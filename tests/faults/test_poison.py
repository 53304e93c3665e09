"""A poison document: one that kills the worker process handling it (as a segfault in
a parser or an OOM kill would). Its batch is redelivered, split into one task per
document, the others are published, and the poison one ends in the dead letters after
``INGEST_TASK_MAX_DELIVERIES`` deliveries instead of killing workers for ever.

The worker is real; what makes the document deadly is a ``sitecustomize`` module on the
worker's PYTHONPATH that wraps ``process_document`` to SIGKILL its own process when
the text carries a marker — the product's code has no hook for it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.faults.inject import write_sitecustomize
from tests.helpers import (
    WorkerProcess,
    clean_env,
    run_cli,
    session_database,
    start_worker,
    wait_for,
)
from worker.embedded_redis import EmbeddedRedis

pytestmark = [pytest.mark.faults, pytest.mark.integration]

DB = 2
MARKER = "POISONPILL"

# Kills the worker process that processes a document carrying the marker.
KILLER = f"""
import os, signal

def wrap(real):
    def process_document(doc, *args, **kwargs):
        if "{MARKER}" in doc.content:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(doc, *args, **kwargs)
    return process_document
"""


@pytest.fixture
def db(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    with session_database(redis_server.port, DB) as client:
        yield client


@pytest.fixture
def env(redis_server: EmbeddedRedis, tmp_path: Path) -> dict[str, str]:
    hook = write_sitecustomize(
        tmp_path / "hook", module="pipelines.process", attr="process_document", wrapper=KILLER
    )
    return clean_env(
        REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/{DB}",
        INGEST_DATA_DIR=str(tmp_path / "var"),
        INGEST_TASK_MAX_DELIVERIES="3",
        PYTHONPATH=str(hook),
    )


@pytest.fixture
def worker(env: dict[str, str], tmp_path: Path, db: redis.Redis) -> Iterator[WorkerProcess]:
    process = start_worker(env, tmp_path / "worker.log", name="poison", concurrency=1)
    yield process
    process.stop()


def write_documents(folder: Path) -> list[Path]:
    rng = random.Random(11)
    words = [
        "ferry",
        "bakery",
        "orchard",
        "quarry",
        "lantern",
        "harvest",
        "granite",
        "compass",
        "meadow",
    ]
    folder.mkdir()
    paths = []
    for i in range(6):
        poison = f" {MARKER}" if i == 3 else ""
        body = " ".join(rng.choice(words) for _ in range(80)).capitalize()
        path = folder / f"doc{i}.txt"
        path.write_text(f"Dispatch {i} from the ferry\n\n{body}{poison}.\n")
        paths.append(path)
    return paths


@pytest.mark.timeout(150)
def test_a_document_that_kills_its_worker_is_dead_lettered_and_the_rest_published(
    db: redis.Redis, env: dict[str, str], worker: WorkerProcess, tmp_path: Path
) -> None:
    paths = write_documents(tmp_path / "docs")
    sent = run_cli("replay", *map(str, paths), "--batch-size", "6", env=env)
    assert sent.returncode == 0, sent.stderr

    wait_for(lambda: db.xlen("ingest:dead") == 1, 120, interval=0.5, what="the dead letter")
    titles = sorted(json.loads(f[b"article"])["title"] for _, f in db.xrange("ingest:articles"))
    assert titles == [f"Dispatch {i} from the ferry" for i in (0, 1, 2, 4, 5)]
    ((_, fields),) = db.xrange("ingest:dead")
    record = json.loads(fields[b"record"])
    assert record["stage"] == "worker" and "died 2 times" in record["reason"]
    assert record["source_ref"].endswith("doc3.txt")
    assert MARKER in record["message"]["content"]  # requeueable: the document is kept
    log = worker.log_text()
    assert "ingest.split" in log and "task.redelivered" in log
    assert worker.process.poll() is None  # the worker itself lives on


# Hangs where the soft time limit cannot reach (its signal blocked, as in C code).
HANGER = f"""
import signal, time

def wrap(real):
    def process_document(doc, *args, **kwargs):
        if "{MARKER}" in doc.content:
            signal.pthread_sigmask(signal.SIG_BLOCK, {{signal.SIGUSR1}})
            time.sleep(600)
        return real(doc, *args, **kwargs)
    return process_document
"""


@pytest.mark.timeout(90)
def test_a_batch_stuck_past_the_hard_time_limit_is_dead_lettered_not_lost(
    db: redis.Redis, redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    """The hard time limit kills the process; Celery then runs the task's failure
    handler in the parent, which dead-letters every document of the batch."""
    hook = write_sitecustomize(
        tmp_path / "hang", module="pipelines.process", attr="process_document", wrapper=HANGER
    )
    env = clean_env(
        REDIS_URL=f"redis://127.0.0.1:{redis_server.port}/{DB}",
        INGEST_DATA_DIR=str(tmp_path / "var"),
        INGEST_TASK_SOFT_TIME_LIMIT="2",
        INGEST_TASK_TIME_LIMIT="4",
        PYTHONPATH=str(hook),
    )
    worker = start_worker(env, tmp_path / "hang.log", name="hang", concurrency=1)
    try:
        paths = write_documents(tmp_path / "docs")
        sent = run_cli("replay", *map(str, paths[2:5]), "--batch-size", "3", env=env)
        assert sent.returncode == 0, sent.stderr
        wait_for(lambda: db.xlen("ingest:dead") == 3, 60, interval=0.5, what="dead letters")
    finally:
        worker.stop()
    records = [json.loads(f[b"record"]) for _, f in db.xrange("ingest:dead")]
    assert {r["stage"] for r in records} == {"task"}
    assert all("TimeLimitExceeded" in r["reason"] for r in records)
    assert sorted(Path(r["source_ref"]).name for r in records) == [
        "doc2.txt",
        "doc3.txt",
        "doc4.txt",
    ]

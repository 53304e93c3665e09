"""Send seed files through the Celery queue, and follow what becomes of them.

Files are read and decoded here (so a worker on another machine needs no access to
them), batched ``replay_batch_size`` documents per task, and sent as they are read. A
file that cannot be a document (unknown type, binary, empty, unreadable) is recorded in
the run as failed with its reason; it never reaches the queue.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from config.settings import Settings
from pipelines.documents import iter_seed_files, load_files
from pipelines.ingest import Outcome
from worker.runs import processed_count, record_outcomes, run_outcomes


@dataclass(frozen=True, slots=True)
class ReplaySent:
    run_id: str
    total: int
    sent: int
    rejected: int


@dataclass(slots=True)
class ReplaySummary:
    counts: Counter[str]
    problems: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, outcomes: Sequence[dict[str, Any]]) -> ReplaySummary:
        counts = Counter(o["status"] for o in outcomes)
        problems = sorted(
            (o for o in outcomes if o["status"] != "published"),
            key=lambda o: (o["status"], o.get("source_ref") or ""),
        )
        return cls(counts, problems)


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:8]


def send_replay(
    client: redis.Redis,
    paths: Sequence[Path],
    settings: Settings,
    *,
    force: bool = False,
    batch_size: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReplaySent:
    """Queue every document under ``paths``; ``on_progress(sent, total)`` after each batch."""
    from worker.tasks import ingest_documents_task  # the Celery app needs a Redis URL

    files = list(iter_seed_files(paths))
    run_id = new_run_id()
    size = max(1, batch_size or settings.replay_batch_size)
    batch: list[dict[str, Any]] = []
    rejected: list[Outcome] = []
    done = 0

    def flush() -> None:
        nonlocal done
        if batch:
            ingest_documents_task.apply_async(
                args=[list(batch)], kwargs={"run_id": run_id, "force": force}
            )
            done += len(batch)
            batch.clear()
            if on_progress:
                on_progress(done + len(rejected), len(files))

    for loaded in load_files(files, max_bytes=settings.max_document_bytes):
        if loaded.document is None:
            doc_id = hashlib.sha256(str(loaded.path).encode()).hexdigest()[:24]
            rejected.append(
                Outcome(doc_id, str(loaded.path), "failed", reason=f"load: {loaded.error}")
            )
            continue
        batch.append(loaded.document.to_message())
        if len(batch) >= size:
            flush()
    flush()
    record_outcomes(client, run_id, rejected, ttl=settings.run_report_ttl)
    if on_progress:
        on_progress(done + len(rejected), len(files))
    return ReplaySent(run_id, len(files), done, len(rejected))


def wait_for_run(
    client: redis.Redis,
    run_id: str,
    total: int,
    *,
    timeout: float,
    on_progress: Callable[[int], None] | None = None,
    poll: float = 0.2,
) -> bool:
    """Wait until every document of the run has an outcome; False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        processed = processed_count(client, run_id)
        if on_progress:
            on_progress(processed)
        if processed >= total:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


def summarize_run(client: redis.Redis, run_id: str) -> ReplaySummary:
    return ReplaySummary.of(run_outcomes(client, run_id))

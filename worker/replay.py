"""Send seed files through the Celery queue, and follow what becomes of them.

Files are read and decoded here (so a worker on another machine needs no access to
them; a feed file gives one document per entry) and sent ``replay_batch_size``
documents per task. A file that cannot be read as documents (unknown type, binary,
empty, not a feed) is recorded in the run as failed with its reason; it never reaches
the queue.
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
from pipelines.ingest import Outcome
from pipelines.seeds import load_seed_files
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

    run_id = new_run_id()
    loaded = list(
        load_seed_files(
            paths, max_bytes=settings.max_document_bytes, teaser_max_words=settings.teaser_max_words
        )
    )
    rejected = [
        Outcome(
            hashlib.sha256(str(item.path).encode()).hexdigest()[:24],
            str(item.path),
            "failed",
            reason=f"load: {item.error}",
        )
        for item in loaded
        if item.error
    ]
    # One outcome per distinct document (a feed may repeat an entry word for word).
    messages = list(
        {doc.doc_id: doc.to_message() for item in loaded for doc in item.documents}.values()
    )
    total = len(messages) + len(rejected)
    record_outcomes(client, run_id, rejected, ttl=settings.run_report_ttl)
    size = max(1, batch_size or settings.replay_batch_size)
    for start in range(0, len(messages), size):
        ingest_documents_task.apply_async(
            args=[messages[start : start + size]], kwargs={"run_id": run_id, "force": force}
        )
        if on_progress:
            on_progress(min(start + size, len(messages)) + len(rejected), total)
    if on_progress:
        on_progress(total, total)
    return ReplaySent(run_id, total, len(messages), len(rejected))


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

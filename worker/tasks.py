"""Celery tasks: thin wrappers that add Redis I/O, retries and logging context around
the stages in ``pipelines/``."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import redis
import structlog
from celery import Task

from config.settings import get_settings
from pipelines.ingest import IngestOptions, fail_documents, ingest_documents
from pipelines.rules import rules_from_dir
from worker.app import app
from worker.options import near_options
from worker.resources import fetch_page, redis_client
from worker.runs import record_outcomes

log = structlog.get_logger("worker.tasks")
settings = get_settings()

# Errors of the connection, not of the document: retry the task (its appends are
# idempotent). Anything a document itself causes is handled per document.
TRANSIENT_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.TryAgainError,
)


def ingest_options(force: bool) -> IngestOptions:
    return IngestOptions(
        rules=rules_from_dir(settings.boilerplate_dir),
        default_tz=ZoneInfo(settings.default_timezone),
        dedup_ttl=settings.dedup_ttl,
        articles_stream=settings.articles_stream,
        duplicates_stream=settings.duplicates_stream,
        dead_stream=settings.dead_stream,
        force=force,
        max_share=settings.rule_max_share,
        near=near_options(settings),
        fetch_page=fetch_page,
        # Under the soft time limit, with room for one last page and the appends.
        page_budget=max(10.0, settings.task_soft_time_limit - settings.fetch_total_timeout - 30),
    )


class DocumentsTask(Task):  # type: ignore[misc]
    """A document task that, when it fails for good (retries used up, a broken rule
    pack, the soft time limit), dead-letters each of its documents with the reason,
    instead of letting them vanish with an acknowledged, failed task."""

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        messages: list[dict[str, Any]] = list(args[0] if args else kwargs.get("messages", []))
        run_id = kwargs.get("run_id")
        reason = f"{type(exc).__name__}: {exc}"
        try:
            client = redis_client()
            outcomes = fail_documents(
                client,
                messages,
                stage="task",
                reason=reason,
                dead_stream=settings.dead_stream,
                ttl=settings.dedup_ttl,
                delivery_id=task_id,
            )
            if run_id:
                record_outcomes(client, run_id, outcomes, ttl=settings.run_report_ttl)
        except redis.RedisError as redis_error:
            # Nowhere to write: the log is the last place the documents are named.
            log.error(
                "batch.lost",
                task_id=task_id,
                run_id=run_id,
                reason=reason,
                redis_error=str(redis_error),
                documents=[m.get("source_ref") or m.get("url") for m in messages],
            )


@app.task(
    bind=True,
    base=DocumentsTask,
    name="ingest.documents",
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=settings.task_retry_backoff_max,
    retry_jitter=True,
    max_retries=settings.task_max_retries,
)
def ingest_documents_task(
    self: Any, messages: list[dict[str, Any]], run_id: str | None = None, force: bool = False
) -> dict[str, int]:
    """Clean, dedup and publish a batch of documents (dicts from
    ``RawDocument.to_message``). Returns the count of each outcome."""
    structlog.contextvars.bind_contextvars(run_id=run_id)
    client = redis_client()
    outcomes = ingest_documents(
        client, messages, ingest_options(force), delivery_id=self.request.id
    )
    if run_id:
        record_outcomes(client, run_id, outcomes, ttl=settings.run_report_ttl)
    counts = {"published": 0, "duplicate": 0, "failed": 0}
    for outcome in outcomes:
        counts[outcome.status] += 1
    return counts


@app.task(name="ingest.noop")
def noop(counter_key: str | None = None) -> None:
    """Does nothing but count itself: measures Celery's per-task cost (bench/replay.py)."""
    if counter_key:
        redis_client().incr(counter_key)

"""Celery tasks: thin wrappers that add Redis I/O, retries and logging context around
the stages in ``pipelines/``."""

from __future__ import annotations

import contextlib
import time
from typing import Any
from zoneinfo import ZoneInfo

import redis
import structlog
from celery import Task
from celery.exceptions import Reject
from kombu.exceptions import OperationalError

from config.settings import get_settings
from pipelines.ingest import IngestOptions, fail_documents, ingest_documents
from pipelines.rules import rules_from_dir
from pipelines.streams import Pressure
from worker.app import app
from worker.backpressure import CHECK_EVERY, current_pressure
from worker.options import near_options
from worker.resources import fetch_page, redis_client
from worker.runs import record_outcomes

log = structlog.get_logger("worker.tasks")
RUNNING_PREFIX = "ingest:running:"  # task id -> runs started and not ended
settings = get_settings()

# Errors of the connection, not of the document: retry the task (its appends are
# idempotent). Anything a document itself causes is handled per document.
TRANSIENT_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.TryAgainError,
    OperationalError,  # kombu: a task could not be sent (the broker is this Redis)
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

    def retry(self, *args: Any, **kwargs: Any) -> Any:
        # The broker is the Redis that just failed: when the retry message cannot be
        # sent, Celery rejects the delivery *without* requeueing it and the batch would
        # vanish. Requeue it instead; if Redis is still away, the message stays unacked
        # and the visibility timeout brings it back.
        try:
            return super().retry(*args, **kwargs)
        except Reject as exc:
            if exc.requeue:
                raise
            log.warning("task.retry_unsent", reason=str(exc.reason), note="requeued instead")
            raise Reject(exc.reason, requeue=True) from None

    def on_retry(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        # Celery's own retry line is at INFO in a logger kept at WARNING (it also logs
        # every success); a retry is worth a line of its own.
        messages = args[0] if args else kwargs.get("messages", [])
        log.warning(
            "task.retry",
            task_id=task_id,
            retries=self.request.retries,
            max_retries=self.max_retries,
            documents=len(messages),
            error=f"{type(exc).__name__}: {exc}",
        )

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
    ``RawDocument.to_message``). Returns the count of each outcome.

    Before the work, two guards. Backpressure: while a consumer group's backlog is above
    the high-water mark the task waits, then goes back to the queue. Poison: a delivery counter
    per task tells how often a worker died holding it (a crash, an OOM kill); a batch
    that killed one is split into one task per document, and a lone document that kept
    killing workers is dead-lettered instead of being redelivered for ever."""
    structlog.contextvars.bind_contextvars(run_id=run_id)
    client = redis_client()
    kwargs = {"run_id": run_id, "force": force}
    pressure = _wait_out_pressure(client)
    if pressure is not None:
        # Back to the end of the queue, not an ETA task: those would all be fetched and
        # held in the workers' memory; the queue should stay in Redis, where it shows.
        log.warning(
            "ingest.deferred",
            reason=pressure.describe(),
            documents=len(messages),
            waited=settings.backpressure_delay,
        )
        self.apply_async(args=[messages], kwargs=kwargs)
        return {"deferred": len(messages)}
    running = RUNNING_PREFIX + self.request.id
    lost = _workers_lost(client, running)
    try:
        if lost and len(messages) > 1:
            log.warning("ingest.split", workers_lost=lost, documents=len(messages))
            for message in messages:
                self.apply_async(args=[[message]], kwargs=kwargs)
            return {"split": len(messages)}
        if lost >= settings.task_max_deliveries - 1:
            outcomes = fail_documents(
                client,
                messages,
                stage="worker",
                reason=(
                    f"the worker died {lost} times while processing this document "
                    "(a crash or an OOM kill)"
                ),
                dead_stream=settings.dead_stream,
                ttl=settings.dedup_ttl,
                delivery_id=self.request.id,
            )
        else:
            outcomes = ingest_documents(
                client, messages, ingest_options(force), delivery_id=self.request.id
            )
        if run_id:
            record_outcomes(client, run_id, outcomes, ttl=settings.run_report_ttl)
    finally:
        # This run ended (done, or raised: a retry, a failure handled by on_failure);
        # only a run whose process died leaves its count behind.
        with contextlib.suppress(redis.RedisError):
            client.delete(running)
    counts = {"published": 0, "duplicate": 0, "failed": 0}
    for outcome in outcomes:
        counts[outcome.status] += 1
    return counts


def _wait_out_pressure(client: redis.Redis) -> Pressure | None:
    """Wait while a group's backlog is over the high-water mark, at most
    ``backpressure_delay`` seconds; the pressure still on after that, or None. A worker
    process waiting here takes no other task: that is the slowing down."""
    pressure = current_pressure(client, settings)
    # Well inside the soft time limit, which would fail the task.
    wait = min(settings.backpressure_delay, settings.task_soft_time_limit / 2)
    deadline = time.monotonic() + wait
    while pressure is not None and time.monotonic() < deadline:
        time.sleep(min(CHECK_EVERY, max(0.0, deadline - time.monotonic())))
        pressure = current_pressure(client, settings)
    return pressure


def _workers_lost(client: redis.Redis, key: str) -> int:
    """How many earlier runs of this task started and never ended: their worker died
    under them. Each run counts itself in ``key`` and deletes it when it ends, so a
    task redelivered after it finished (its acknowledgement lost with a broker outage)
    or retried counts no death."""
    pipe = client.pipeline()
    pipe.incr(key)
    # Outlives the redeliveries it counts: each waits for the visibility timeout.
    pipe.expire(key, settings.visibility_timeout * (settings.task_max_deliveries + 2))
    lost = int(pipe.execute()[0]) - 1
    if lost:
        log.warning("task.redelivered", workers_lost=lost)
    return lost


@app.task(name="ingest.noop")
def noop(counter_key: str | None = None) -> None:
    """Does nothing but count itself: measures Celery's per-task cost (bench/replay.py)."""
    if counter_key:
        redis_client().incr(counter_key)

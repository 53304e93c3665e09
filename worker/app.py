"""The Celery application.

Delivery settings follow from the pipeline's contract: tasks are acknowledged late and
rejected (so redelivered) when their worker dies; a worker takes one task at a time per
process; the broker's visibility timeout is above the longest task, and the task time
limits are below it, so a task is only redelivered when its worker is truly gone. Tasks
are idempotent, which makes redelivery safe.
"""

from __future__ import annotations

from typing import Any

import structlog
from celery import Celery, signals
from kombu import Queue

from config.settings import Settings, get_settings
from worker.logs import configure_logging, logging_configured
from worker.runtime import require_redis_url

INGEST_QUEUE = "ingest"
FEEDS_QUEUE = "feeds"  # its own queue: polls hold leases and must not wait behind documents
SCHEDULER_QUEUE = "scheduler"
QUEUES = (INGEST_QUEUE, FEEDS_QUEUE, SCHEDULER_QUEUE)


def celery_config(settings: Settings, redis_url: str) -> dict[str, Any]:
    return {
        "broker_url": redis_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": settings.unacked_restore_interval,
            "unacked_restore_throttle": settings.unacked_restore_throttle,
        },
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": settings.task_time_limit,
        "task_soft_time_limit": settings.task_soft_time_limit,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,  # outcomes go to streams and run reports, not results
        "task_default_queue": INGEST_QUEUE,
        "task_queues": [Queue(name) for name in QUEUES],
        "task_routes": {
            "ingest.*": {"queue": INGEST_QUEUE},
            "feeds.*": {"queue": FEEDS_QUEUE},
            "scheduler.*": {"queue": SCHEDULER_QUEUE},
        },
        # Flower shows tasks from these events.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "timezone": "UTC",
        "enable_utc": True,
        # One active scheduler: RedBeat holds a lock in Redis; a second beat waits for it.
        "beat_scheduler": "redbeat.RedBeatScheduler",
        "redbeat_redis_url": redis_url,
        "redbeat_redis_options": {"health_check_interval": 30},
        "redbeat_key_prefix": "ingest:redbeat:",
        "redbeat_lock_timeout": settings.beat_lock_timeout,
        "beat_max_loop_interval": max(1, min(settings.beat_lock_timeout // 5, 5)),
        "beat_schedule": {
            "scheduler-tick": {
                "task": "scheduler.tick",
                "schedule": settings.tick_interval,
                # A tick nobody ran in time is stale; the next one will come.
                "options": {"expires": max(1.0, settings.tick_interval)},
            },
            "stream-retention": {
                "task": "scheduler.retention",
                "schedule": settings.stream_trim_interval,
                "options": {"expires": max(1.0, settings.stream_trim_interval)},
            },
        },
    }


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("feed_ingest", include=["worker.tasks", "worker.polling", "worker.maintenance"])
    app.conf.update(celery_config(settings, require_redis_url(settings)))
    return app


app = create_app()


@signals.setup_logging.connect
def _setup_logging(**_: Any) -> None:
    # Connected: Celery leaves logging to us (one format for every record). The
    # `ingest` commands configure it before Celery starts; `celery -A worker.app` does not.
    if not logging_configured():
        configure_logging(get_settings(), "worker")


@signals.task_prerun.connect
def _bind_task(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    structlog.contextvars.bind_contextvars(task_id=task_id, task=getattr(task, "name", None))


@signals.task_postrun.connect
def _unbind_task(**_: Any) -> None:
    structlog.contextvars.unbind_contextvars("task_id", "task", "run_id", "doc_id", "source_ref")

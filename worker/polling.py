"""Feed polling tasks: the scheduler's tick claims due feeds; poll tasks fetch them.

The tick (sent by the one active beat every ``tick_interval``) claims due feeds from the
due-set with a lease, at most ``poll_max_in_flight`` at a time, and sends them in batches
of ``poll_batch_size`` to ``feeds.poll``. A poll task fetches its feeds concurrently
(``poll_threads``), sends new entries to ``ingest.documents``, then marks them seen and
completes each lease with the feed's state and next poll time.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime, timedelta

import structlog

from config.settings import Settings, get_settings
from pipelines.feedstore import (
    Claim,
    claim_due,
    claim_feed,
    claimed_feed,
    complete_poll,
    network_outage,
    record_poll_health,
)
from pipelines.poll import PollOptions, PollResult, crashed, finish_poll, poll_feed
from pipelines.schedule import Bounds, NextPoll
from worker.app import INGEST_QUEUE, app
from worker.backpressure import current_pressure
from worker.resources import fetcher, host_limits, redis_client
from worker.tasks import TRANSIENT_ERRORS, ingest_documents_task

log = structlog.get_logger("worker.polling")

SCHEDULER_KEY = "ingest:scheduler"
TICKS_KEY = "ingest:scheduler:ticks"
settings = get_settings()


def poll_options(settings: Settings) -> PollOptions:
    return PollOptions(
        bounds=Bounds(
            min_interval=settings.poll_min_interval,
            max_interval=settings.poll_max_interval,
            default_interval=settings.poll_default_interval,
            jitter=settings.poll_jitter,
            max_jitter=settings.poll_max_jitter,
        ),
        host_limits=host_limits(settings),
        unconditional_every=settings.unconditional_every,
        redirect_confirmations=settings.redirect_confirmations,
        max_changes=settings.entry_max_changes,
        teaser_max_words=settings.teaser_max_words,
    )


@app.task(name="scheduler.tick", autoretry_for=TRANSIENT_ERRORS, max_retries=1)
def scheduler_tick() -> None:
    """The scheduler's periodic tick (sent by the one active beat): records a heartbeat
    an operator can check, then claims the due feeds and sends them to poll tasks."""
    now = datetime.now(UTC)
    pipe = redis_client().pipeline()
    pipe.hset(SCHEDULER_KEY, mapping={"last_tick_at": now.isoformat()})
    pipe.hincrby(SCHEDULER_KEY, "ticks", 1)
    pipe.lpush(TICKS_KEY, f"{now.timestamp():.3f}")
    pipe.ltrim(TICKS_KEY, 0, 999)
    pipe.execute()
    claim_and_dispatch(now)


def claim_and_dispatch(now: datetime) -> int:
    """Claim due feeds (leased, under the in-flight cap) and send them to poll tasks;
    none while a consumer group's backlog is above the high-water mark (the feeds stay
    due and are polled once it drains). The deferral is recorded in ``ingest:scheduler``
    for ``ingest status``."""
    client = redis_client()
    pressure = current_pressure(client, settings)
    if pressure is not None:
        client.hset(
            SCHEDULER_KEY,
            mapping={"deferred_at": now.isoformat(), "deferred_reason": pressure.describe()},
        )
        log.warning("scheduler.deferred", reason=pressure.describe())
        return 0
    client.hdel(SCHEDULER_KEY, "deferred_at", "deferred_reason")
    claims = claim_due(
        client,
        now,
        lease=settings.poll_lease,
        max_in_flight=settings.poll_max_in_flight,
        limit=settings.poll_max_in_flight,
    )
    size = max(1, settings.poll_batch_size)
    for start in range(0, len(claims), size):
        batch = [[c.feed_id, c.token] for c in claims[start : start + size]]
        poll_feeds_task.apply_async(args=[batch])
    if claims:
        log.info("feeds.claimed", count=len(claims), tasks=-(-len(claims) // size))
    return len(claims)


@app.task(name="feeds.poll", acks_late=True, ignore_result=True)
def poll_feeds_task(claims: list[list[str]]) -> dict[str, int]:
    """Poll a batch of claimed feeds, recording each as soon as it is done. Not retried
    by Celery: a feed whose poll did not finish is due again when its lease runs out.
    Feeds not started within the task's time budget are put off a few seconds."""
    client = redis_client()
    outage = network_outage(
        client, min_polls=settings.outage_min_polls, failure_ratio=settings.outage_failure_ratio
    )
    if outage:
        log.warning("feeds.network_outage", note="failures are not counted against feeds")
    options = poll_options(settings)
    # Leave room under the soft time limit for the last fetches to finish.
    deadline = time.monotonic() + max(
        10.0, settings.task_soft_time_limit - settings.fetch_total_timeout - 15
    )
    items = [Claim(feed_id, token) for feed_id, token in claims]
    counts: dict[str, int] = {}
    reached = []
    workers = max(1, min(settings.poll_threads, len(items)))
    with ThreadPoolExecutor(workers, thread_name_prefix="poll") as pool:
        futures = {pool.submit(_poll_one, c, options, outage, deadline): c for c in items}
        for future in as_completed(futures):
            claim = futures[future]
            try:
                result = future.result()
                if result is not None:
                    _finish(claim, result)
            except TRANSIENT_ERRORS as exc:
                # Redis went away mid-poll: the lease runs out and the feed comes back.
                log.warning("feeds.poll_unrecorded", feed_id=claim.feed_id, error=str(exc))
                result = None
            outcome = result.outcome if result is not None else "skipped"
            counts[outcome] = counts.get(outcome, 0) + 1
            if result is not None and result.reached_host is not None:
                reached.append(result.reached_host)
    record_poll_health(client, reached)
    return counts


def _poll_one(
    claim: Claim, options: PollOptions, outage: bool, deadline: float
) -> PollResult | None:
    client = redis_client()
    feed = claimed_feed(client, claim)
    if feed is None:
        log.info("feeds.stale_claim", feed_id=claim.feed_id)
        return None
    now = datetime.now(UTC)
    if not feed.enabled or feed.status == "disabled":
        complete_poll(client, claim, {}, None)  # disabled since it was claimed
        return None
    if time.monotonic() > deadline:
        return PollResult(
            feed, "deferred", NextPoll(now + timedelta(seconds=5), 5.0, "poll task out of time")
        )
    with structlog.contextvars.bound_contextvars(feed_id=feed.id, feed_url=feed.url):
        try:
            return poll_feed(
                client, fetcher(), feed, options, now=now, outage=outage, rng=random.Random()
            )
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:  # a bug met by one feed must not sink the batch
            log.exception("feeds.poll_crashed")
            return crashed(feed, exc, options, now=now)


def _finish(claim: Claim, result: PollResult) -> None:
    """Hand new entries to the pipeline first, then record the poll: in this order, a
    crash repeats entries (absorbed by idempotent publishing) rather than losing them."""
    client = redis_client()
    if result.documents:
        messages = [doc.to_message() for doc in result.documents]
        size = max(1, settings.replay_batch_size)
        for start in range(0, len(messages), size):
            ingest_documents_task.apply_async(
                args=[messages[start : start + size]], queue=INGEST_QUEUE
            )
    completed = finish_poll(client, claim, result, seen_ttl=settings.seen_ttl)
    if result.new_url and completed:
        log.warning("feeds.moved", feed_id=result.feed.id, old=result.feed.url, new=result.new_url)
    event = "feeds.polled" if completed else "feeds.lease_lost"
    level = log.warning if result.error or not completed else log.info
    level(event, **result.summary)


def poll_now(feed_id: str) -> None:
    """Poll one feed at once (``ingest feeds poll``): claim it and send it."""
    claim = claim_feed(redis_client(), feed_id, datetime.now(UTC), lease=settings.poll_lease)
    poll_feeds_task.apply_async(args=[[[claim.feed_id, claim.token]]])

"""Which of a feed's entries are new: seen keys in Redis with a horizon.

One key per (feed, entry): ``ingest:seen:<feed id>:<hash of the entry key>`` holding
"<content fingerprint> <times processed>", expiring after ``ttl``. Every poll that still
sees an entry renews its key, so an entry never comes back as new while it stays in the
feed, nor when the feed re-publishes old items within the horizon (tombstones). An entry
whose fingerprint changed is processed again, at most ``max_changes`` times.

Marking happens after the entries were handed to the pipeline (at-least-once: a crash in
between re-sends them, and the pipeline's idempotent publish absorbs the repeat).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import redis

SEEN_PREFIX = "ingest:seen:"

Novelty = Literal["new", "changed", "seen", "changed_too_often"]


@dataclass(frozen=True, slots=True)
class EntryCheck:
    key: str
    fingerprint: str
    novelty: Novelty
    times: int  # times processed before this poll

    @property
    def wanted(self) -> bool:
        return self.novelty in ("new", "changed")


def _seen_key(feed_id: str, entry_key: str) -> str:
    digest = hashlib.sha256(entry_key.encode("utf-8")).hexdigest()[:24]
    return f"{SEEN_PREFIX}{feed_id}:{digest}"


def check_entries(
    client: redis.Redis,
    feed_id: str,
    keys: Sequence[str],
    fingerprints: Sequence[str],
    *,
    max_changes: int,
) -> list[EntryCheck]:
    values = client.mget([_seen_key(feed_id, key) for key in keys]) if keys else []
    checks = []
    for key, fingerprint, value in zip(keys, fingerprints, values, strict=True):
        if value is None:
            checks.append(EntryCheck(key, fingerprint, "new", 0))
            continue
        stored, _, times_text = value.decode().partition(" ")
        times = int(times_text or 1)
        if stored == fingerprint:
            novelty: Novelty = "seen"
        elif times > max_changes:  # the first processing plus max_changes changes
            novelty = "changed_too_often"
        else:
            novelty = "changed"
        checks.append(EntryCheck(key, fingerprint, novelty, times))
    return checks


def mark_entries(
    client: redis.Redis, feed_id: str, checks: Sequence[EntryCheck], *, ttl: int
) -> None:
    """Record this poll's entries: processed ones with their new fingerprint and count,
    the others renewed as they were."""
    pipe = client.pipeline(transaction=False)
    for check in checks:
        key = _seen_key(feed_id, check.key)
        if check.wanted:
            pipe.set(key, f"{check.fingerprint} {check.times + 1}", ex=ttl)
        else:
            pipe.expire(key, ttl)
    pipe.execute()

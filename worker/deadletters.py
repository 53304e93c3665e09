"""Dead letters: list them, and requeue one (``ingest dead list`` / ``ingest dead
requeue``).

Two kinds share the dead stream. A *document* dead letter (its processing failed, its
worker kept dying, its task failed for good) carries the original message: requeueing
sends it through the ingest queue again. A *consumer* dead letter (a downstream handler
failed on an entry ``max_deliveries`` times) carries the entry's fields: requeueing
appends them to the group's requeue stream, which that group's consumers read. Either
way the dead letter is removed once its requeue is sent, and a new one appears if it
fails again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from config.settings import Settings
from pipelines.downstream import ORIGIN_ID, ORIGIN_STREAM, requeue_stream
from pipelines.publish import SEQ_FIELD


@dataclass(frozen=True, slots=True)
class DeadLetter:
    entry_id: str
    record: dict[str, Any]
    ours: bool = True  # False: an entry not written by feed-ingest (its raw fields)

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(int(self.entry_id.split("-")[0]) / 1000, UTC)

    @property
    def kind(self) -> str:
        if not self.ours:
            return "unknown"
        return "consumer" if self.record.get("source") == "consumer" else "document"

    @property
    def subject(self) -> str:
        """What died: the document, or the stream entry and its group."""
        if self.kind == "consumer":
            record = self.record
            return f"{record.get('stream')} {record.get('entry_id')} (group {record.get('group')})"
        return str(self.record.get("source_ref") or self.record.get("doc_id"))

    @property
    def reason(self) -> str:
        stage = self.record.get("stage")
        reason = str(self.record.get("reason") or self.record.get("error") or "")
        return f"{stage}: {reason}" if stage and self.kind == "document" else reason


class RequeueError(LookupError):
    """No such dead letter, or one that carries nothing to requeue."""


def parse_dead(entry_id: bytes | str, fields: dict[bytes, bytes]) -> DeadLetter:
    """A dead-stream entry; one that is not ours keeps its raw fields as the reason."""
    decoded = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in fields.items()}
    key = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    try:
        record = json.loads(decoded.get("record", ""))
    except ValueError:
        record = None
    if not isinstance(record, dict):
        raw = ", ".join(f"{k}={v}" for k, v in decoded.items() if k != SEQ_FIELD)
        return DeadLetter(key, {"reason": raw[:300] or None, "fields": decoded}, ours=False)
    return DeadLetter(key, record)


def list_dead(client: redis.Redis, settings: Settings, *, count: int) -> list[DeadLetter]:
    """The newest ``count`` dead letters, oldest first."""
    entries = client.xrevrange(settings.dead_stream, count=count)
    return [parse_dead(i, f) for i, f in reversed(entries)]


def get_dead(client: redis.Redis, settings: Settings, entry_id: str) -> DeadLetter:
    try:
        entries = client.xrange(settings.dead_stream, min=entry_id, max=entry_id)
    except redis.ResponseError as exc:  # not an entry id at all
        raise RequeueError(f"{entry_id!r} is not a stream entry id") from exc
    if not entries:
        raise RequeueError(f"no dead letter {entry_id} on {settings.dead_stream}")
    return parse_dead(*entries[0])


def requeue(client: redis.Redis, settings: Settings, entry_id: str) -> str:
    """Send a dead letter back where it failed; returns where it went."""
    dead = get_dead(client, settings, entry_id)
    if dead.kind == "consumer":
        fields = dict(dead.record.get("fields") or {})
        stream, group = dead.record.get("stream"), dead.record.get("group")
        if not fields or not stream or not group:
            raise RequeueError(f"dead letter {entry_id} names no entry to requeue")
        fields.setdefault(ORIGIN_STREAM, str(stream))
        fields.setdefault(ORIGIN_ID, str(dead.record.get("entry_id")))
        target = requeue_stream(str(stream), str(group))
        pipe = client.pipeline(transaction=True)
        pipe.xadd(target, fields)
        pipe.xdel(settings.dead_stream, entry_id)
        pipe.execute()
        return f"{target} (read by group {group})"
    message = dead.record.get("message")
    if not isinstance(message, dict):
        raise RequeueError(f"dead letter {entry_id} carries no document message")
    from worker.tasks import ingest_documents_task  # the Celery app: only when needed

    result = ingest_documents_task.apply_async(args=[[message]])
    client.xdel(settings.dead_stream, entry_id)
    return f"the ingest queue (task {result.id})"

"""Idempotent appends to Redis streams.

A task can be retried after it appended an entry but before it was acknowledged (a crash,
a lost connection). Each append therefore carries an idempotency key; one Lua script
checks the key's marker and appends only when it is absent, then sets the marker to the
new entry id. A second attempt gets the first entry's id back and adds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis

from pipelines.article import Article

MARKER_PREFIX = "ingest:published:"
SEQ_FIELD = "seq"


def seq_key(stream: str) -> str:
    """The counter of appends to ``stream`` (the ``seq`` of its newest entry)."""
    return f"{stream}:seq"


# KEYS: stream, marker, the stream's sequence counter. ARGV: marker ttl, delivery id, then
# field, value, field, value… The marker holds "<entry id> <delivery id>". Returns
# {1, new entry id, 1}, or {0, the earlier entry id, 1 if that delivery made it}. Seeing
# the item again keeps its marker for another full horizon, as the dedup claim does for
# its keys. Each entry gets a ``seq`` field, the stream's running count of appends: the
# difference of two entries' seq is how many lie between them, which Redis 6.2 cannot
# say cheaply (pipelines/streams.py uses it for a group's lag).
_APPEND_ONCE = """
local previous = redis.call('GET', KEYS[2])
if previous then
  redis.call('EXPIRE', KEYS[2], ARGV[1])
  local space = string.find(previous, ' ', 1, true)
  local entry = string.sub(previous, 1, space - 1)
  local same = string.sub(previous, space + 1) == ARGV[2] and 1 or 0
  return {0, entry, same}
end
local seq = redis.call('INCR', KEYS[3])
local entry = redis.call('XADD', KEYS[1], '*', 'seq', seq, unpack(ARGV, 3))
redis.call('SET', KEYS[2], entry .. ' ' .. ARGV[2], 'EX', ARGV[1])
return {1, entry, 1}
"""


@dataclass(frozen=True, slots=True)
class Append:
    stream: str
    idempotency_key: str
    fields: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Appended:
    entry_id: str
    created: bool  # this call appended the entry
    by_this_delivery: bool  # this call, or an earlier attempt of the same delivery, did


def append_once(
    client: redis.Redis, appends: Sequence[Append], *, ttl: int, delivery_id: str
) -> list[Appended]:
    """Append each entry unless its idempotency key was used before (one round trip).
    ``delivery_id`` (the task id: stable when a task is retried or redelivered) tells a
    retry of this delivery, which did the work, from another delivery of the same item."""
    if not appends:
        return []
    script = client.register_script(_APPEND_ONCE)
    pipe = client.pipeline(transaction=False)
    for item in appends:
        args: list[str | int] = [ttl, delivery_id]
        for name, value in item.fields.items():
            args += [name, value]
        keys = [item.stream, MARKER_PREFIX + item.idempotency_key, seq_key(item.stream)]
        script(keys=keys, args=args, client=pipe)
    return [
        Appended(entry.decode() if isinstance(entry, bytes) else entry, created == 1, same == 1)
        for created, entry, same in pipe.execute()
    ]


def article_fields(article: Article) -> dict[str, str]:
    """A stream entry for an article: its id and schema version as fields of their own
    (cheap to filter on), and the whole article as JSON in ``article``."""
    return {
        "id": article.id,
        "schema_version": str(article.schema_version),
        "article": article.to_json(),
    }


def record_fields(kind: str, record: Mapping[str, object]) -> dict[str, str]:
    """A stream entry for a record that is not an article (a duplicate, a dead letter):
    its kind and the record as JSON."""
    return {"kind": kind, "record": json.dumps(record, ensure_ascii=False, default=str)}

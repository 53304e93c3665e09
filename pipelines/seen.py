"""Which of a feed's entries are new: one Redis hash of seen entries per feed.

``ingest:seen:<feed id>`` maps a hash of each entry key to "<content fingerprint>
<times processed> <last seen, epoch>". Every poll that sees an entry refreshes its time;
an entry that left the feed stays as a tombstone until ``ttl`` after it was last seen,
so a feed re-publishing old items does not make them new. Not-modified polls renew the
whole hash (its entries are still in the feed), so a quiet feed keeps its memory. An
entry whose fingerprint changed is processed again, at most ``max_changes`` times.

Each entry is recorded under its key of every kind (guid, link, hash — see
``pipelines.feeds.entry_keys``) and looked up under the kind in use. On the poll where a
feed switches kinds (it started repeating guids, say, and falls back to links), the
entries are also looked up under their other keys — those unique in this fetch — so
the switch does not make every entry new.

Marking happens after the entries were handed to the pipeline (at-least-once: a crash in
between re-sends them, and the pipeline's idempotent publish absorbs the repeat).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import redis

SEEN_PREFIX = "ingest:seen:"

Novelty = Literal["new", "changed", "seen", "changed_too_often"]

# KEYS: the feed's seen hash. ARGV: now, ttl, then field, value… Sets the fields, drops
# the tombstones not seen for ttl, and keeps the hash for ttl.
_MARK = """
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
if #ARGV > 2 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 3))
end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local seen_at = tonumber(string.match(all[i + 1], '(%S+)$'))
  if seen_at == nil or seen_at < now - ttl then
    redis.call('HDEL', KEYS[1], all[i])
  end
end
redis.call('EXPIRE', KEYS[1], ttl)
return 1
"""


@dataclass(frozen=True, slots=True)
class EntryCheck:
    key: str
    fingerprint: str  # the entry's now
    novelty: Novelty
    times: int  # times processed before this poll
    stored: str | None = None  # the fingerprint last processed
    aliases: tuple[str, ...] = ()  # its keys of the other kinds

    @property
    def wanted(self) -> bool:
        return self.novelty in ("new", "changed")


def _seen_hash(feed_id: str) -> str:
    return f"{SEEN_PREFIX}{feed_id}"


def _field(entry_key: str) -> str:
    return hashlib.sha256(entry_key.encode("utf-8")).hexdigest()[:20]


def check_entries(
    client: redis.Redis,
    feed_id: str,
    keys: Sequence[str],
    fingerprints: Sequence[str],
    *,
    max_changes: int,
    aliases: Sequence[Sequence[str]] | None = None,
    look_up_aliases: bool = False,
) -> list[EntryCheck]:
    """Classify entries by their ``keys``. ``aliases`` are each entry's keys of the other
    kinds: recorded with it, and looked up as well when ``look_up_aliases`` (the poll on
    which the feed switched kinds) — only those no other entry of this fetch shares."""
    if not keys:
        return []
    groups = [
        tuple(alias for alias in group if alias != key)
        for key, group in zip(keys, aliases or [()] * len(keys), strict=True)
    ]
    shared = Counter(alias for group in groups for alias in set(group))
    lookups = [
        tuple(alias for alias in group if shared[alias] == 1) if look_up_aliases else ()
        for group in groups
    ]
    fields = [_field(key) for key in keys]
    for lookup in lookups:
        fields += [_field(alias) for alias in lookup]
    values = iter(client.hmget(_seen_hash(feed_id), fields))
    own = [next(values) for _ in keys]
    checks = []
    for key, fingerprint, value, group, lookup in zip(
        keys, fingerprints, own, groups, lookups, strict=True
    ):
        for alias_value in [next(values) for _ in lookup]:
            value = value or alias_value
        if value is None:
            checks.append(EntryCheck(key, fingerprint, "new", 0, aliases=group))
            continue
        stored, times_text, _ = value.decode().split(" ", 2)
        times = int(times_text)
        if stored == fingerprint:
            novelty: Novelty = "seen"
        elif times > max_changes:  # the first processing plus max_changes changes
            novelty = "changed_too_often"
        else:
            novelty = "changed"
        checks.append(EntryCheck(key, fingerprint, novelty, times, stored, group))
    return checks


def mark_entries(
    client: redis.Redis, feed_id: str, checks: Sequence[EntryCheck], *, ttl: int, now: float
) -> None:
    """Record a poll's entries: processed ones with their new fingerprint and count,
    the others with their time renewed; forget tombstones older than ``ttl``."""
    args: list[str | float | int] = [now, ttl]
    for check in checks:
        if check.wanted:
            value = f"{check.fingerprint} {check.times + 1} {now:.0f}"
        else:
            value = f"{check.stored or check.fingerprint} {max(check.times, 1)} {now:.0f}"
        for key in (check.key, *check.aliases):
            args += [_field(key), value]
    client.eval(_MARK, 1, _seen_hash(feed_id), *args)


def renew_entries(client: redis.Redis, feed_id: str, *, ttl: int) -> None:
    """A not-modified poll: the feed's entries are all still there; keep them."""
    client.expire(_seen_hash(feed_id), ttl)

"""Exact deduplication, shared by every worker through Redis.

An article has up to three exact keys: its feed guid, its canonical URL and the hash of
its text's match form. One Lua script checks all of an article's keys and claims them in
a single atomic step, so two workers holding two copies of one story at the same moment
agree on which came first. Keys expire after the horizon (``dedup_ttl``).

A key already owned by the *same* article id is not a duplicate: that is the same article
seen again (a retried task, a replay); publishing is idempotent per article id and
reports it (:mod:`pipelines.publish`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import redis

from pipelines.article import Article

KEY_PREFIX = "ingest:dedup:"

Layer = Literal["guid", "url", "text"]

# KEYS: the article's dedup keys, strongest first. ARGV: article id, ttl seconds.
# Returns {owner id, matched key} for a duplicate, {article id, false} otherwise.
# A duplicate's unclaimed keys become aliases of the owner (its URL now names that
# story too); they never take a key another article owns.
_CLAIM = """
for i, key in ipairs(KEYS) do
  local owner = redis.call('GET', key)
  if owner and owner ~= ARGV[1] then
    for j, other in ipairs(KEYS) do
      redis.call('SET', other, owner, 'NX', 'EX', ARGV[2])
    end
    return {owner, key}
  end
end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'EX', ARGV[2])
end
return {ARGV[1], false}
"""


@dataclass(frozen=True, slots=True)
class DedupKey:
    layer: Layer
    key: str


@dataclass(frozen=True, slots=True)
class Verdict:
    article_id: str
    owner_id: str
    matched: DedupKey | None

    @property
    def is_duplicate(self) -> bool:
        return self.owner_id != self.article_id


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def exact_keys(article: Article) -> list[DedupKey]:
    keys: list[DedupKey] = []
    if article.guid:
        keys.append(DedupKey("guid", f"{KEY_PREFIX}guid:{_digest(article.guid)}"))
    if article.canonical_url:
        keys.append(DedupKey("url", f"{KEY_PREFIX}url:{_digest(article.canonical_url)}"))
    keys.append(DedupKey("text", f"{KEY_PREFIX}text:{article.content_hash}"))
    return keys


def claim_exact(client: redis.Redis, articles: Sequence[Article], *, ttl: int) -> list[Verdict]:
    """Check and claim the exact keys of ``articles`` (one round trip for the batch)."""
    if not articles:
        return []
    script = client.register_script(_CLAIM)
    pipe = client.pipeline(transaction=False)
    keysets = [exact_keys(article) for article in articles]
    for article, keys in zip(articles, keysets, strict=True):
        script(keys=[k.key for k in keys], args=[article.id, ttl], client=pipe)
    verdicts = []
    for article, keys, (owner, matched) in zip(articles, keysets, pipe.execute(), strict=True):
        owner_id = owner.decode() if isinstance(owner, bytes) else str(owner)
        matched_key = matched.decode() if isinstance(matched, bytes) else None
        hit = next((k for k in keys if k.key == matched_key), None)
        verdicts.append(Verdict(article.id, owner_id, hit))
    return verdicts

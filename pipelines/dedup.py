"""Deduplication across feeds and sites, shared by every worker through Redis.

Layers, strongest first, all decided by ONE Lua script per article (atomic: two
workers holding two copies of a story at the same instant agree on which came first):

1. exact keys — the feed guid (scoped by its feed unless it is a URL, URN or tag URI),
   the canonical URL (its alias form: http/https, www./m. and tracking parameters do
   not matter, see :mod:`pipelines.urls`), the hash of the text's match form;
2. the source a repost names — a captured ``original_url`` ("Go to Source") that is a
   known article's URL makes the repost that article's duplicate, whatever its text;
3. near-duplicates — candidates from the LSH bands of the MinHash signature
   (:mod:`pipelines.neardup`) and from the text's lead (its first 30 words: a teaser
   starts like its full article), each confirmed on the stored signature: estimated
   Jaccard at least ``min_jaccard`` (a footer, a changed title, an extra paragraph), or
   the smaller text contained in the larger at least ``min_containment`` (texts within
   4× in size); or, for the candidate with the same lead, the shorter text opening the
   longer paragraph by paragraph (layer "lead": a teaser and its long article, where
   MinHash containment is too noisy). Texts shorter than ``min_words`` go through the
   exact layers only.

A duplicate's keys become aliases of the story it joins (its URL and text now name that
story too); a first sighting claims them. A duplicate clearly longer than the story
(``update_ratio``: the full text after a teaser) can be flagged as the story's update;
its signature then stands for the story.

Storage, sized for about 0.7 KB per article (``bench/dedup_scale.py``):

* ``ingest:sig:<short id>`` — per first-seen article: its full id and packed signature
  (empty for short texts); expires ``ttl`` after the story was last seen. Every other
  entry points here by the article's short id (the first 8 bytes of its id), so this
  key's expiry ends the story for every layer at once.
* ``ingest:dedup:<gen>:<bucket>`` and ``ingest:lsh:<gen>:<bucket>`` — hashes of exact
  keys and LSH bands, field → short id, in ``index_buckets`` buckets a family (65,536 by
  default). Bucketed so that each stays a compact ziplist/listpack (a dozen bytes per
  entry instead of a key's hundred) up to 512 entries (``hash-max-ziplist-entries``,
  which the embedded Redis sets; set it on your own Redis too), yet small enough to
  search quickly: about one bucket per ten articles a horizon. In generations
  as long as the horizon: writes go to the newest, the two newest are looked in, and a
  generation's hashes expire as a whole when it stops being looked in — every entry is
  kept at least ``ttl`` (and at most twice that).

An entry already naming the *same* article is not a duplicate: that is the article seen
again (a retried task, a replay); publishing is idempotent per article id and reports it
(:mod:`pipelines.publish`).
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import redis

from pipelines.article import Article
from pipelines.neardup import (
    CONTAINMENT_MAX_RATIO,
    LEAD_ONLY_MAX_SHINGLES,
    LEAD_PARAGRAPHS,
    LEAD_WORDS,
    SHINGLE_WORDS,
    Fingerprint,
)
from pipelines.urls import alias_form, url_key

SHORT_ID_BYTES = 8

Layer = Literal["guid", "url", "text", "original_url", "near", "lead"]
# Exact-key families: the first three are an article's own keys, "source" a URL a repost
# names as its source, "lead" the hash of a text's first words.
Family = Literal["guid", "url", "text", "source", "lead"]

# ARGV (binary blobs, so that a call is a dozen arguments, not a hundred):
#  1 full id (16 bytes)   2 short id (8 bytes)   3 ttl
#  4 exact entries: 12 bytes each — layer code (g guid, u url, t text), bucket (3 bytes),
#    field (8 bytes)
#  5 the original URL's entries (22 bytes: as a url, then as a named source — each a
#    bucket, field; '' for none)   6 lead entry (11 bytes; '' for none)
#  7 packed fingerprint ('' for none)   8, 9 newest and previous generation
#  10 when the newest generation's hashes expire (unix time)
#  11 min Jaccard   12 min containment   13 update ratio (0: never)
#  14 bands: 7 bytes each — bucket (3 bytes), field (4 bytes)
#  15 hashes of the newest generation this worker has not given their expiry yet:
#     4 bytes each — family (d exact, l bands), bucket (3 bytes)
#  16 the article's own URL as a named source (11 bytes; '' for none)
# Returns {owner full id (hex), layer, jaccard, containment, update ('1' or '')}; layer ''
# for a first sighting (the owner is the article itself).
_DEDUP = """
local MAX_RATIO, LEAD_PARAGRAPHS = {{MAX_RATIO}}, {{LEAD_PARAGRAPHS}}
local LEAD_ONLY_MAX = {{LEAD_ONLY_MAX}}
local LAYERS = {g = 'guid', u = 'url', t = 'text'}
local full_id, short_id, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local sig = ARGV[7]
local gens = {ARGV[8], ARGV[9]}
local expire_at = ARGV[10]
local min_j, min_c = tonumber(ARGV[11]), tonumber(ARGV[12])
local update_ratio = tonumber(ARGV[13])

local function bucket(blob, at)
  local b1, b2, b3 = string.byte(blob, at, at + 2)
  return tostring((b1 * 256 + b2) * 256 + b3)
end
local function entries(blob, size, field_at, field_size)
  local out = {}
  for at = 1, #blob, size do
    out[#out + 1] = {
      bucket(blob, at + field_at - 4),
      string.sub(blob, at + field_at - 1, at + field_at + field_size - 2),
      LAYERS[string.sub(blob, at, at)],
    }
  end
  return out
end
local exact = entries(ARGV[4], 12, 5, 8)
local originals = entries(ARGV[5], 11, 4, 8)
local original_url, original_source = originals[1], originals[2]
local own_source = entries(ARGV[16], 11, 4, 8)[1]
local lead = entries(ARGV[6], 11, 4, 8)[1]
local bands = entries(ARGV[14], 7, 4, 4)

local FAMILY = {d = 'ingest:dedup:', l = 'ingest:lsh:'}
local function expire_new()
  local blob = ARGV[15]
  for at = 1, #blob, 4 do
    local key = FAMILY[string.sub(blob, at, at)] .. gens[1] .. ':' .. bucket(blob, at + 1)
    redis.call('EXPIREAT', key, expire_at)
  end
end

-- Records are named by the short id in hex, readable in redis-cli.
local function record_key(short)
  return 'ingest:sig:' .. string.format(string.rep('%02x', 8), string.byte(short, 1, 8))
end
local function hex(raw)
  return (raw:gsub('.', function(ch) return string.format('%02x', string.byte(ch)) end))
end

-- The short id an entry names, newest generation first.
local function find(prefix, entry)
  for _, gen in ipairs(gens) do
    local value = redis.call('HGET', prefix .. gen .. ':' .. entry[1], entry[2])
    if value then return value end
  end
  return nil
end

local function put(prefix, entry, short, only_if_free)
  local key = prefix .. gens[1] .. ':' .. entry[1]
  if only_if_free then
    redis.call('HSETNX', key, entry[2], short)
  else
    redis.call('HSET', key, entry[2], short)
  end
end

local function count(packed)
  local b1, b2, b3, b4 = string.byte(packed, 129, 132)
  return ((b1 * 256 + b2) * 256 + b3) * 256 + b4
end

-- An entry naming another article whose story is still kept: that article's record.
local function other_story(prefix, entry)
  local short = find(prefix, entry)
  if short and short ~= short_id then
    local record = redis.call('GET', record_key(short))
    if record then return short, record end
  end
  return nil
end

-- Claim this article's entries for a story (its own or the one it joins): exact keys
-- taken over when claiming for itself, everything else only where free. The original
-- URL is claimed as a named source, never as the URL of an article.
local function claim_entries(owner, for_itself)
  for _, e in ipairs(exact) do put('ingest:dedup:', e, owner, not for_itself) end
  if original_source then put('ingest:dedup:', original_source, owner, true) end
  if lead then put('ingest:dedup:', lead, owner, true) end
  for _, b in ipairs(bands) do put('ingest:lsh:', b, owner, true) end
end

-- A record is the story's full id (16 bytes), the short id of the article whose
-- fingerprint it holds (8 bytes: the first article, or its latest update), the
-- fingerprint ('' for a short text).
local function record_value(full, holder, fingerprint)
  return full .. holder .. fingerprint
end

-- Join a story: claim the entries for it, keep the story another horizon, and the
-- verdict. A text update_ratio times longer than the story's is an update of the story:
-- its fingerprint then stands for the story, so only a still longer text is another
-- update; the same update again (a retried task) is still the update.
local function joined(owner, record, layer, j, c)
  claim_entries(owner, false)
  local owner_full, holder = string.sub(record, 1, 16), string.sub(record, 17, 24)
  local stored = string.sub(record, 25)
  local update = ''
  if update_ratio > 0 and holder == short_id then
    update = '1'
  elseif update_ratio > 0 and sig ~= '' then
    local stored_count = 0
    if stored ~= '' then stored_count = count(stored) end
    if count(sig) > stored_count and count(sig) >= stored_count * update_ratio then
      update, holder, stored = '1', short_id, sig
    end
  end
  redis.call('SET', record_key(owner), record_value(owner_full, holder, stored), 'EX', ttl)
  expire_new()
  return {hex(owner_full), layer, tostring(j), tostring(c), update}
end

-- A story's first article seen again (a retried task, a replay, a refetch): still its
-- own story. Renew its entries and record; keep the stored fingerprint (an update's may
-- stand there) unless there is none.
local own = redis.call('GET', record_key(short_id))
if own then
  claim_entries(short_id, true)
  local holder, stored = string.sub(own, 17, 24), string.sub(own, 25)
  if stored == '' and sig ~= '' then holder, stored = short_id, sig end
  redis.call('SET', record_key(short_id), record_value(full_id, holder, stored), 'EX', ttl)
  expire_new()
  return {hex(full_id), '', '', '', ''}
end

for _, e in ipairs(exact) do
  local owner, record = other_story('ingest:dedup:', e)
  if owner then return joined(owner, record, e[3], 1, 1) end
end

-- The source a repost names: a known article at that URL, or a story whose repost named
-- the same source; and this article as the source an earlier repost named.
for _, e in pairs({original_url or false, original_source or false, own_source or false}) do
  if e then
    local owner, record = other_story('ingest:dedup:', e)
    if owner then return joined(owner, record, 'original_url', 1, 1) end
  end
end

-- Estimated Jaccard and containment from two packed signatures (8-bit MinHash values,
-- then a 4-byte shingle count). Containment only for texts within MAX_RATIO in size:
-- beyond that a few chance agreements make any short text look contained (0 then).
local function similarity(a, b)
  local agree = 0
  for p = 1, 128 do
    if string.byte(a, p) == string.byte(b, p) then agree = agree + 1 end
  end
  local j = (agree / 128 - 1 / 256) / (1 - 1 / 256)
  if j < 0 then j = 0 end
  local na, nb = count(a), count(b)
  local smaller, larger = math.min(na, nb), math.max(na, nb)
  if smaller < 1 then smaller = 1 end
  if larger > MAX_RATIO * smaller then return j, 0 end
  local c = j * (na + nb) / (1 + j) / smaller
  if c > 1 then c = 1 end
  return j, c
end

-- Whether the shorter text opens the longer: its paragraphs but the last (a feed may cut
-- it short) are the longer's first paragraphs; a text of one paragraph must be the first
-- paragraph, or short enough that the shared lead is most of it. (Layout:
-- pipelines/neardup.py — the paragraph count is byte 141, the 4-byte hashes follow.)
local function opens(a, b)
  if count(a) > count(b) then a, b = b, a end
  local whole = string.byte(a, 141) - 1
  if whole > LEAD_PARAGRAPHS then return false end
  if whole == 0 then
    return count(a) <= LEAD_ONLY_MAX or string.sub(a, 142, 145) == string.sub(b, 142, 145)
  end
  return string.sub(a, 142, 141 + 4 * whole) == string.sub(b, 142, 141 + 4 * whole)
end

if sig ~= '' then
  local seen = {}
  local best, best_record, best_j, best_c = nil, nil, -1, -1
  local by_lead, lead_record, lead_j, lead_c = nil, nil, 0, 0
  local function consider(short, via_lead)
    if not short or short == short_id or seen[short] then return end
    seen[short] = true
    local record = redis.call('GET', record_key(short))
    if not record or #record <= 24 then return end
    local other = string.sub(record, 25)
    local j, c = similarity(sig, other)
    if (j >= min_j or c >= min_c) and (j > best_j or (j == best_j and c > best_c)) then
      best, best_record, best_j, best_c = short, record, j, c
    elseif via_lead and opens(sig, other) then
      by_lead, lead_record, lead_j, lead_c = short, record, j, c
    end
  end
  if lead then
    for _, gen in ipairs(gens) do
      consider(redis.call('HGET', 'ingest:dedup:' .. gen .. ':' .. lead[1], lead[2]), true)
    end
  end
  for _, b in ipairs(bands) do
    for _, gen in ipairs(gens) do
      consider(redis.call('HGET', 'ingest:lsh:' .. gen .. ':' .. b[1], b[2]), false)
    end
  end
  if best then return joined(best, best_record, 'near', best_j, best_c) end
  if by_lead then return joined(by_lead, lead_record, 'lead', lead_j, lead_c) end
end

-- A first sighting: claim every entry, keep the record.
claim_entries(short_id, true)
redis.call('SET', record_key(short_id), record_value(full_id, short_id, sig), 'EX', ttl)
expire_new()
return {hex(full_id), '', '', '', ''}
"""
for _name, _value in {
    "MAX_RATIO": CONTAINMENT_MAX_RATIO,
    "LEAD_PARAGRAPHS": LEAD_PARAGRAPHS,
    "LEAD_ONLY_MAX": LEAD_ONLY_MAX_SHINGLES,
}.items():
    _DEDUP = _DEDUP.replace("{{" + _name + "}}", str(_value))


@dataclass(frozen=True, slots=True)
class NearOptions:
    """How near is a duplicate, and what a longer duplicate is (measured on
    bench/dedup_eval.py; see the README's "Deduplication" section)."""

    enabled: bool = True
    min_words: int = 30  # shorter texts: exact layers only (LEAD_WORDS: the lead key)
    min_jaccard: float = 0.5
    min_containment: float = 0.7
    # A duplicate this many times longer than its story (in shingles) is an update of the
    # story; 0: duplicates are never updates.
    update_ratio: float = 0.0
    # Hashes per generation in each of the two index families (a power of two, at most
    # 2^24): about one per ten articles a horizon keeps each hash small — compact, and
    # quick to search (see the README).
    index_buckets: int = 65536

    def __post_init__(self) -> None:
        n = self.index_buckets
        if not 1 <= n <= 1 << 24 or n & (n - 1):
            raise ValueError(f"index_buckets must be a power of two up to 2^24, not {n}")


@dataclass(frozen=True, slots=True)
class DedupKey:
    """An exact key: its layer and the value it is made of (a guid, a URL's alias form,
    a content hash, a text's lead)."""

    layer: Family
    value: str

    def digest(self) -> bytes:
        return hashlib.blake2b(f"{self.layer}:{self.value}".encode(), digest_size=12).digest()


@dataclass(frozen=True, slots=True)
class Verdict:
    """What dedup decided for one article. ``owner_id`` is the story's first-seen
    article (the article itself for a first sighting)."""

    article_id: str
    owner_id: str
    layer: Layer | None = None  # the layer that matched
    matched: str | None = None  # what matched: the guid, URL, content hash, lead…
    jaccard: float | None = None  # estimated Jaccard with the story (1 for exact layers)
    containment: float | None = None  # of the shorter text in the longer (0: not estimated)
    update: bool = False  # a longer version of the story (see NearOptions.update_ratio)

    @property
    def is_duplicate(self) -> bool:
        return self.owner_id != self.article_id


def guid_scope(guid: str, feed_url: str | None) -> str:
    """A guid that is a URL, URN or tag URI names the entry everywhere; any other ("1234",
    "post-17") only within its feed, so it is scoped by the feed's URL."""
    guid = guid.strip()
    if guid.lower().startswith(("http://", "https://", "urn:", "tag:")):
        return guid
    return f"{feed_url or ''} {guid}"


def exact_keys(article: Article) -> list[DedupKey]:
    keys: list[DedupKey] = []
    if article.guid:
        keys.append(DedupKey("guid", guid_scope(article.guid, article.feed_url)))
    if article.canonical_url:  # canonical already (pipelines.process): no re-normalizing
        keys.append(DedupKey("url", alias_form(article.canonical_url)))
    keys.append(DedupKey("text", article.content_hash))
    return keys


def near_fingerprint(article: Article, options: NearOptions) -> Fingerprint | None:
    """The article's fingerprint, when the near layer applies to it: the layer is on and
    the text has at least ``min_words`` words (in match form, as the lead counts them)."""
    if not options.enabled or not article.fingerprint:
        return None
    fp = Fingerprint.unpack(bytes.fromhex(article.fingerprint))
    if fp.shingles + SHINGLE_WORDS - 1 < options.min_words:
        return None
    return fp


def generations(ttl: int, now: float) -> tuple[tuple[str, str], int]:
    """The generations to look in (newest first; writes go to the first) and when the
    newest one's hashes expire. A generation spans the horizon and is looked in during
    the next one too: an entry written at the very end of one is still found a whole
    horizon later."""
    span = max(1, ttl)
    current = int(now // span)
    return (str(current), str(current - 1)), (current + 2) * span


class _Expiries:
    """Which hashes of the newest generation have been given their expiry through one
    connection pool: each gets EXPIREAT in the script that first writes to it, not on
    every write — that saves a Redis call per entry. Forgotten every few minutes, so a
    hash deleted or evicted meanwhile and written again gets its expiry back."""

    FORGET_AFTER = 300.0

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation = ""
        self.since = 0.0
        self.done: set[bytes] = set()

    def needed(self, generation: str, keys: Sequence[bytes]) -> list[bytes]:
        with self.lock:
            now = time.monotonic()
            if generation != self.generation or now - self.since > self.FORGET_AFTER:
                self.generation, self.since, self.done = generation, now, set()
            return [key for key in dict.fromkeys(keys) if key not in self.done]

    def mark(self, generation: str, keys: Sequence[bytes]) -> None:
        with self.lock:
            if generation == self.generation:  # not a generation that ended meanwhile
                self.done.update(keys)


_expiries_lock = threading.Lock()
_expiries: weakref.WeakKeyDictionary[object, _Expiries] = weakref.WeakKeyDictionary()


def _lead_words(text: str) -> str:
    return " ".join(text.split(maxsplit=LEAD_WORDS)[:LEAD_WORDS])


def _bucket(value: bytes, buckets: int) -> bytes:
    return (int.from_bytes(value, "big") & (buckets - 1)).to_bytes(3, "big")


def _entry(key: DedupKey, buckets: int) -> bytes:
    """Bucket (3 bytes) and field (8 bytes) of an exact entry: from its digest."""
    digest = key.digest()
    return _bucket(digest[:3], buckets) + digest[3:11]


def _band_entries(fp: Fingerprint, buckets: int) -> bytes:
    """Bucket (3 bytes) and field (4 bytes) of each band key (its index, then ROWS
    uniform bytes): the last three values pick the bucket, the index and the first three
    values are the field (with up to 2^16 buckets the field and the bucket together hold
    the whole band; beyond, a few bits are in both)."""
    return b"".join(_bucket(band[3:], buckets) + band[:4] for band in fp.bands())


_LAYER_CODES = {"guid": b"g", "url": b"u", "text": b"t"}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def claim(
    client: redis.Redis,
    articles: Sequence[Article],
    *,
    ttl: int,
    near: NearOptions,
    now: float | None = None,
) -> list[Verdict]:
    """Check and claim every layer for each article (one script call each, pipelined
    over the batch): a verdict per article, in order. Two copies in one batch are
    decided in order too — the second is the first's duplicate."""
    if not articles:
        return []
    script = client.register_script(_DEDUP)
    gens, expire_at = generations(ttl, time.time() if now is None else now)
    buckets = near.index_buckets
    pipe = client.pipeline(transaction=False)
    matched_values: list[dict[str, str]] = []
    expiring: list[bytes] = []
    with _expiries_lock:
        expiries = _expiries.setdefault(client.connection_pool, _Expiries())
    for article in articles:
        keys = exact_keys(article)
        fp = near_fingerprint(article, near)
        original = url_key(article.original_url)
        own = alias_form(article.canonical_url) if article.canonical_url else None
        lead_key = DedupKey("lead", fp.lead.hex()) if fp else None
        values = {key.layer: key.value for key in keys}
        if original or own:
            values["original_url"] = original or own or ""
        matched_values.append(values)

        exact = b"".join(_LAYER_CODES[key.layer] + _entry(key, buckets) for key in keys)
        # The original URL is looked up as an article's URL and as a source another
        # repost named; it is claimed as a named source only.
        source_entry = _entry(DedupKey("source", original), buckets) if original else b""
        originals = _entry(DedupKey("url", original), buckets) + source_entry if original else b""
        own_source = _entry(DedupKey("source", own), buckets) if own else b""
        lead_entry = _entry(lead_key, buckets) if lead_key else b""
        bands = _band_entries(fp, buckets) if fp else b""
        written = [b"d" + exact[i + 1 : i + 4] for i in range(0, len(exact), 12)]
        written += [b"d" + entry[:3] for entry in (source_entry, lead_entry) if entry]
        written += [b"l" + bands[i : i + 3] for i in range(0, len(bands), 7)]
        fresh = expiries.needed(gens[0], written)
        expiring += fresh
        full = bytes.fromhex(article.id)
        args: list[str | bytes | int | float] = [
            full,
            full[:SHORT_ID_BYTES],
            ttl,
            exact,
            originals,
            lead_entry,
            fp.packed() if fp else b"",
            *gens,
            expire_at,
            near.min_jaccard,
            near.min_containment,
            near.update_ratio,
            bands,
            b"".join(fresh),
            own_source,
        ]
        script(keys=[], args=args, client=pipe)
    replies = pipe.execute()
    expiries.mark(gens[0], expiring)
    verdicts = []
    for article, values, reply in zip(articles, matched_values, replies, strict=True):
        owner, layer, jaccard, containment, update = (_text(v) for v in reply)
        if not layer:
            verdicts.append(Verdict(article.id, article.id))
            continue
        verdicts.append(
            Verdict(
                article.id,
                owner,
                layer,  # type: ignore[arg-type]
                _lead_words(article.text) if layer == "lead" else values.get(layer),
                float(jaccard),
                float(containment),
                update == "1",
            )
        )
    return verdicts

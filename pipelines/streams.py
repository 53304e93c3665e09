"""The streams' bookkeeping for downstream delivery: how far each consumer group got, the
backlog that drives backpressure, and retention that never trims an entry a group still
needs.

A group's *backlog* is its *lag* (entries appended after the last one delivered to it)
plus its *pending* entries (delivered, not acknowledged). Redis 6.2 (the embedded
default) does not report lag, so every append carries a ``seq`` field, the stream's
running count of appends (pipelines/publish.py): the lag is the newest entry's seq minus
the first undelivered entry's seq, plus one — two one-entry reads, however long the
stream. Entries without it (written by something else) leave the lag unknown; entries
deleted from the middle (XDEL) make it an upper bound.

Retention: ``MAXLEN ~`` trimming on XADD can drop entries a slow group has not read yet
(before Redis 8.2). Streams are therefore appended to without a cap and trimmed by
``trim_stream`` (a periodic task): down to ``max_len`` entries, but never past the
*safe point* — the oldest entry that some registered group has pending or not yet
received. A stream held above its cap by a slow group is reported (``held_by``) and
stays readable; backpressure keeps it from growing without bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from pipelines.publish import SEQ_FIELD

# KEYS: stream. Returns {length, first id, last id, last seq, then per group: name,
# consumers, pending, last delivered id, first pending id, first undelivered id, its
# seq, Redis 7's lag}. Ids are '' and numbers -1 when there is none (or unknown). One
# script: a consistent snapshot in one round trip.
_PROGRESS = """
local stream = KEYS[1]
if redis.call('EXISTS', stream) == 0 then return {0, '', '', -1} end
local function seq_of(entries)
  if not entries[1] then return -1 end
  local fields = entries[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == ARGV[1] then return tonumber(fields[i + 1]) end
  end
  return -1
end
local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
local out = {redis.call('XLEN', stream), first[1] and first[1][1] or '',
             last[1] and last[1][1] or '', seq_of(last)}
for _, group in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  local delivered = info['last-delivered-id']
  local undelivered = redis.call('XRANGE', stream, '(' .. delivered, '+', 'COUNT', 1)
  local pending = redis.call('XPENDING', stream, info['name'])
  local lag = info['lag']
  if type(lag) ~= 'number' then lag = -1 end
  table.insert(out, info['name'])
  table.insert(out, info['consumers'])
  table.insert(out, info['pending'])
  table.insert(out, delivered)
  table.insert(out, pending[2] or '')
  table.insert(out, undelivered[1] and undelivered[1][1] or '')
  table.insert(out, seq_of(undelivered))
  table.insert(out, lag)
end
return out
"""

# KEYS: stream. ARGV: seq field name, max length. Trims to the cap, but never past the
# oldest entry a group has pending or undelivered. Returns {entries trimmed, length
# after, the group holding the stream above its cap or ''}.
_TRIM = """
local stream = KEYS[1]
local max_len = tonumber(ARGV[2])
local length = redis.call('XLEN', stream)
if length <= max_len then return {0, length, ''} end
local function seq_at(id)
  local entries = redis.call('XRANGE', stream, id, '+', 'COUNT', 1)
  if not entries[1] then return nil end
  local fields = entries[1][2]
  for i = 1, #fields, 2 do
    if fields[i] == ARGV[1] then return tonumber(fields[i + 1]) end
  end
  return nil
end
local function older(a, b)
  local ams, aseq = string.match(a, '(%d+)-(%d+)')
  local bms, bseq = string.match(b, '(%d+)-(%d+)')
  if #ams ~= #bms then return #ams < #bms end
  if ams ~= bms then return ams < bms end
  return tonumber(aseq) < tonumber(bseq)
end
local safe, holder = nil, ''
if redis.call('EXISTS', stream) == 1 then
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local info = {}
    for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
    local pending = redis.call('XPENDING', stream, info['name'])
    local point = pending[2]
    local undelivered = redis.call(
      'XRANGE', stream, '(' .. info['last-delivered-id'], '+', 'COUNT', 1)
    if undelivered[1] and (not point or older(undelivered[1][1], point)) then
      point = undelivered[1][1]
    end
    if point and (not safe or older(point, safe)) then safe, holder = point, info['name'] end
  end
end
local trimmed
if not safe then
  -- No group needs anything: plain (approximate) cap.
  trimmed = redis.call('XTRIM', stream, 'MAXLEN', '~', max_len)
else
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1][1]
  local safe_seq, last_seq = seq_at(safe), seq_at(last)
  -- Entries from the safe point on number at most last_seq - safe_seq + 1 (fewer if
  -- some were deleted): when that fits in the cap, trimming to the cap keeps them all.
  if safe_seq and last_seq and last_seq - safe_seq + 1 <= max_len then
    trimmed = redis.call('XTRIM', stream, 'MAXLEN', '~', max_len)
    holder = ''  -- what is left above the cap is the approximation's, not the group's
  else
    trimmed = redis.call('XTRIM', stream, 'MINID', '~', safe)
  end
end
local after = redis.call('XLEN', stream)
if after <= max_len then holder = '' end
return {trimmed, after, holder}
"""


@dataclass(frozen=True, slots=True)
class GroupProgress:
    name: str
    consumers: int
    pending: int  # delivered, not acknowledged
    last_delivered_id: str
    first_pending_id: str | None
    first_undelivered_id: str | None
    lag: int | None  # appended after the last delivered entry; None: cannot tell

    @property
    def backlog(self) -> int | None:
        """Entries the group has not acknowledged: unread plus pending."""
        return None if self.lag is None else self.lag + self.pending


@dataclass(frozen=True, slots=True)
class StreamProgress:
    stream: str
    length: int
    first_id: str | None
    last_id: str | None
    groups: tuple[GroupProgress, ...]


def _text(value: bytes | str | int) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def stream_progress(client: redis.Redis, stream: str) -> StreamProgress:
    """The stream's length and every group's progress, in one consistent snapshot."""
    reply = client.register_script(_PROGRESS)(keys=[stream], args=[SEQ_FIELD])
    length, first_id, last_id, last_seq = (
        int(reply[0]),
        _text(reply[1]),
        _text(reply[2]),
        int(reply[3]),
    )
    groups = []
    rows = reply[4:]
    for i in range(0, len(rows), 8):
        name, consumers, pending, delivered, first_pending, undelivered, undelivered_seq, lag7 = (
            rows[i : i + 8]
        )
        undelivered_id = _text(undelivered) or None
        lag: int | None
        if undelivered_id is None:
            lag = 0
        elif last_seq >= 0 and int(undelivered_seq) >= 0:
            lag = last_seq - int(undelivered_seq) + 1
        elif int(lag7) >= 0:
            lag = int(lag7)
        else:
            lag = None
        groups.append(
            GroupProgress(
                name=_text(name),
                consumers=int(consumers),
                pending=int(pending),
                last_delivered_id=_text(delivered),
                first_pending_id=_text(first_pending) or None,
                first_undelivered_id=undelivered_id,
                lag=lag,
            )
        )
    return StreamProgress(stream, length, first_id or None, last_id or None, tuple(groups))


@dataclass(frozen=True, slots=True)
class Trimmed:
    stream: str
    trimmed: int
    length: int
    held_by: str | None  # the group whose unread or pending entries keep it above its cap


def trim_stream(client: redis.Redis, stream: str, *, max_len: int) -> Trimmed:
    """Trim ``stream`` to about ``max_len`` entries without removing any entry a
    registered group has pending or not yet received (one atomic script)."""
    trimmed, length, holder = client.register_script(_TRIM)(
        keys=[stream], args=[SEQ_FIELD, max_len]
    )
    return Trimmed(stream, int(trimmed), int(length), _text(holder) or None)


@dataclass(frozen=True, slots=True)
class Pressure:
    """A group whose backlog is above the high-water mark."""

    stream: str
    group: str
    backlog: int
    high_water: int

    def describe(self) -> str:
        return (
            f"group {self.group} on {self.stream} has {self.backlog} entries unread or "
            f"unacknowledged (high-water mark {self.high_water})"
        )


def backlog_pressure(progress: StreamProgress, high_water: int) -> Pressure | None:
    """The slowest group, when its backlog is above ``high_water`` (0: never)."""
    backlogs = [(g.backlog, g.name) for g in progress.groups if g.backlog is not None]
    if high_water <= 0 or not backlogs:
        return None  # a group whose lag cannot be told does not pause ingestion
    backlog, name = max(backlogs)
    if backlog <= high_water:
        return None
    return Pressure(progress.stream, name, backlog, high_water)

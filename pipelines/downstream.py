"""The consumer SDK: read a stream as a consumer group, hand batches to a handler,
acknowledge only what the handler took, and never lose or loop on an entry.

    from pipelines.downstream import Consumer

    def handle(entries):            # raise to refuse the batch
        for entry in entries:
            index(entry.data)       # the article as a dict

    Consumer(redis.Redis(), "ingest:articles", "search-index", "indexer-1", handle).run()

What it does, in order of each turn:

* **Its own pending entries first.** On start it re-reads the entries delivered to
  *this* consumer name and never acknowledged: a restarted consumer finishes what it
  held when it stopped.
* **Entries others left behind.** Every ``claim_idle / 2`` it takes over (XAUTOCLAIM)
  entries pending for longer than ``claim_idle`` with any consumer: a consumer that
  crashed or hangs loses them to a live one.
* **New entries**, ``batch_size`` at a time (XREADGROUP, blocking ``block`` seconds).
* **Acknowledge after the handler.** XACK only once the handler returned. When it
  raises on a batch, each entry is tried alone, so one bad entry does not hold back
  the rest; a failing entry stays pending and is tried again (claimed anew, which Redis
  counts as a delivery) after its own exponential back-off.
* **Dead letters.** Redis counts the deliveries of each entry. An entry that failed on
  its ``max_deliveries``-th delivery, or was delivered more often than that without an
  answer (it crashes the consumer), goes to the dead-letter stream with the error and
  is acknowledged, in one atomic step. ``ingest dead requeue`` puts it on the group's
  requeue stream (``<stream>:requeue:<group>``), which the consumer reads too.
* **Graceful stop.** SIGTERM or SIGINT (or ``stop()``) ends the loop after the batch in
  hand is handled and acknowledged.

Delivery is at least once: a consumer killed between its handler and XACK gets the
batch again (``Entry.deliveries > 1``); handlers (sinks) skip what they already have.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import redis
import structlog

from pipelines.publish import SEQ_FIELD, record_fields, seq_key

log = structlog.get_logger("pipelines.downstream")

# A consumer unseen this long that holds nothing is gone (restarted under a new name).
DEPARTED_AFTER = 3600.0

# Fields a requeued entry carries besides its original ones: where it first was.
ORIGIN_STREAM = "origin_stream"
ORIGIN_ID = "origin_id"


def requeue_stream(stream: str, group: str) -> str:
    """Where dead letters of ``group`` on ``stream`` are put back (read by that group)."""
    return f"{stream}:requeue:{group}"


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry as the handler gets it."""

    stream: str  # the stream it was read from
    id: str
    fields: dict[str, str]
    deliveries: int  # times delivered to the group, this one included

    @property
    def origin(self) -> tuple[str, str]:
        """(stream, entry id) of the entry as first published: a requeued entry names
        the one it is a copy of."""
        if ORIGIN_STREAM in self.fields and ORIGIN_ID in self.fields:
            return self.fields[ORIGIN_STREAM], self.fields[ORIGIN_ID]
        return self.stream, self.id

    @property
    def redelivered(self) -> bool:
        """Possibly handled before: delivered earlier, or requeued from a dead letter."""
        return self.deliveries > 1 or ORIGIN_ID in self.fields

    @property
    def data(self) -> dict[str, Any]:
        """The article (or record) as a dict; the raw fields for anything else."""
        for name in ("article", "record"):
            if name in self.fields:
                value = json.loads(self.fields[name])
                return value if isinstance(value, dict) else {name: value}
        return dict(self.fields)


Handler = Callable[[Sequence[Entry]], None]

# Redis gone for a while (restarting, loading its AOF, a network blip): wait, retry.
UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
)

# KEYS: dead stream, its seq counter, the source stream. ARGV: group, entry id, 1 to also
# delete the entry (a requeue stream is read by one group only), then field, value…
_DEAD_LETTER = """
local seq = redis.call('INCR', KEYS[2])
local dead = redis.call('XADD', KEYS[1], '*', 'seq', seq, unpack(ARGV, 4))
redis.call('XACK', KEYS[3], ARGV[1], ARGV[2])
if ARGV[3] == '1' then redis.call('XDEL', KEYS[3], ARGV[2]) end
return dead
"""


@dataclass
class ConsumerStats:
    handled: int = 0  # acknowledged after the handler took them
    failed: int = 0  # handler failures (each retried or dead-lettered)
    dead: int = 0
    claimed: int = 0  # taken over from other consumers
    batches: int = 0
    last_activity: float = field(default_factory=time.monotonic)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Consumer:
    """A consumer in a group on one stream (and the group's requeue stream)."""

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        group: str,
        name: str,
        handler: Handler,
        *,
        batch_size: int = 100,
        block: float = 1.0,
        claim_idle: float = 60.0,
        max_deliveries: int = 5,
        retry_backoff: float = 1.0,
        retry_backoff_max: float = 60.0,
        dead_stream: str = "ingest:dead",
        start_at: str = "0",
    ) -> None:
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        self.client = client
        self.stream = stream
        self.group = group
        self.name = name
        self.handler = handler
        self.batch_size = batch_size
        self.block_ms = max(1, int(block * 1000))
        self.claim_idle_ms = max(1, int(claim_idle * 1000))
        self.max_deliveries = max_deliveries
        self.retry_backoff = retry_backoff
        self.retry_backoff_max = retry_backoff_max
        self.dead_stream = dead_stream
        self.start_at = start_at  # where a new group starts: "0" all retained, "$" new only
        self.requeue = requeue_stream(stream, group)
        self.stats = ConsumerStats()
        self._stopping = threading.Event()
        self._dead_letter = client.register_script(_DEAD_LETTER)
        # Own pending entries to re-read: stream -> cursor; empty when there are none.
        self._history: dict[str, str] = {}
        # Failed entries waiting out their back-off: (stream, id) -> when to try again.
        self._retry_due: dict[tuple[str, str], float] = {}
        self._next_claim = 0.0
        self._claim_cursor = {self.stream: "0-0", self.requeue: "0-0"}

    # --- lifecycle -------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the batch in hand, acknowledge it, and return from ``run``."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def ensure_group(self) -> None:
        """Create the group on the stream and on its requeue stream (idempotent)."""
        for stream, start in ((self.stream, self.start_at), (self.requeue, "0")):
            try:
                self.client.xgroup_create(stream, self.group, id=start, mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def forget_departed(self, idle: float = DEPARTED_AFTER) -> list[str]:
        """Remove the group's consumers that hold nothing and were not seen for ``idle``
        seconds (consumers that were restarted under a new name). Nothing pending is
        ever dropped: a consumer holding entries stays until they are taken over."""
        removed = []
        for consumer in self.client.xinfo_consumers(self.stream, self.group):
            name = _text(consumer["name"])
            if name != self.name and consumer["pending"] == 0 and consumer["idle"] > idle * 1000:
                self.client.xgroup_delconsumer(self.stream, self.group, name)
                removed.append(name)
        if removed:
            log.info("consumer.forgot_departed", group=self.group, consumers=removed)
        return removed

    def run(self, *, until_idle: float | None = None) -> ConsumerStats:
        """Consume until stopped (SIGTERM/SIGINT when run in the main thread, or
        ``stop()``), or, with ``until_idle``, until nothing arrived for that long."""
        self.ensure_group()
        self.forget_departed()
        previous = self._install_signal_handlers()
        self._history = {self.stream: "0", self.requeue: "0"}
        log.info("consumer.started", stream=self.stream, group=self.group, consumer=self.name)
        outage = 0.0  # seconds to wait before trying Redis again; 0: it answers
        try:
            while not self.stopping:
                try:
                    active = self.step()
                except UNAVAILABLE as exc:
                    # Redis restarting or unreachable: what was not acknowledged stays
                    # pending there, and is read again (own pending first) once it is back.
                    outage = min(5.0, outage * 2 or 0.1)
                    log.warning(
                        "consumer.redis_unavailable",
                        group=self.group,
                        consumer=self.name,
                        error=str(exc),
                        retry_in=outage,
                    )
                    self._stopping.wait(outage)
                    self._history = {self.stream: "0", self.requeue: "0"}
                    continue
                except redis.ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    log.warning("consumer.group_missing", group=self.group, error=str(exc))
                    self.ensure_group()  # the stream or group was deleted under us
                    continue
                if outage:
                    log.info("consumer.redis_back", group=self.group, consumer=self.name)
                    outage = 0.0
                idle = time.monotonic() - self.stats.last_activity
                if not active and until_idle is not None and idle >= until_idle:
                    break
        finally:
            self._restore_signal_handlers(previous)
            log.info(
                "consumer.stopped",
                stream=self.stream,
                group=self.group,
                consumer=self.name,
                handled=self.stats.handled,
                failed=self.stats.failed,
                dead=self.stats.dead,
                claimed=self.stats.claimed,
            )
        return self.stats

    def step(self) -> bool:
        """One turn: own pending entries (on start), else failed entries due again, else
        abandoned ones, else new ones. Returns whether there was anything to handle."""
        now = time.monotonic()
        due = [key for key, when in self._retry_due.items() if when <= now]
        if self._history:
            entries = self._read_history()
        elif due:
            entries = self._retry(due)
        elif now >= self._next_claim:
            self._next_claim = now + max(0.5, self.claim_idle_ms / 2000)
            entries = self._claim()
        else:
            entries = self._read_new()
        if not entries:
            return False
        self.stats.last_activity = time.monotonic()
        self.stats.batches += 1
        self._handle(entries)
        return True

    # --- reading ---------------------------------------------------------------------

    def _read_history(self) -> list[Entry]:
        reply = self.client.xreadgroup(
            self.group, self.name, dict(self._history), count=self.batch_size
        )
        raw: list[tuple[str, list[Any]]] = [(_text(s), items) for s, items in reply or []]
        for stream, items in raw:
            if items:
                self._history[stream] = _text(items[-1][0])
            else:
                self._history.pop(stream, None)
        for stream in list(self._history):
            if stream not in {s for s, _ in raw}:
                self._history.pop(stream)
        return self._with_counts(raw)

    def _claim(self) -> list[Entry]:
        raw: list[tuple[str, list[Any]]] = []
        for stream in (self.stream, self.requeue):
            reply = self.client.xautoclaim(
                stream,
                self.group,
                self.name,
                self.claim_idle_ms,
                start_id=self._claim_cursor[stream],
                count=self.batch_size,
            )
            self._claim_cursor[stream] = _text(reply[0])
            if reply[1]:
                raw.append((stream, reply[1]))
            if self._claim_cursor[stream] != "0-0":
                self._next_claim = 0.0  # more to scan: go on at the next turn
        entries = self._with_counts(raw)
        if entries:
            self.stats.claimed += len(entries)
            log.warning(
                "consumer.claimed",
                group=self.group,
                consumer=self.name,
                entries=len(entries),
                note=f"pending with another consumer for over {self.claim_idle_ms} ms",
            )
        return entries

    def _retry(self, due: list[tuple[str, str]]) -> list[Entry]:
        """The failed entries whose back-off is over, claimed again by this consumer
        (XCLAIM counts a delivery); only those, so others keep their own back-off."""
        raw: list[tuple[str, list[Any]]] = []
        for stream in {s for s, _ in due}:
            ids = [i for s, i in due if s == stream]
            for key in ids:
                self._retry_due.pop((stream, key), None)
            claimed = self.client.xclaim(stream, self.group, self.name, 0, ids)
            if claimed:
                raw.append((stream, claimed))
        return self._with_counts(raw)

    def _read_new(self) -> list[Entry]:
        reply = self.client.xreadgroup(
            self.group,
            self.name,
            {self.stream: ">", self.requeue: ">"},
            count=self.batch_size,
            block=self.block_ms,
        )
        return [
            Entry(_text(stream), _text(entry_id), _fields(values), 1)
            for stream, items in reply or []
            for entry_id, values in items
            if values is not None
        ]

    def _with_counts(self, raw: list[tuple[str, list[Any]]]) -> list[Entry]:
        """Entries read again (own pending, claimed) with Redis's delivery counts."""
        entries = []
        for stream, items in raw:
            present = [(i, v) for i, v in items if v]
            gone = [_text(i) for i, v in items if not v]
            if gone:  # deleted while pending: nothing to deliver; drop from the PEL
                self.client.xack(stream, self.group, *gone)
                log.warning("consumer.entries_gone", stream=stream, ids=gone[:20])
            if not present:
                continue
            ids = [_text(i) for i, _ in present]
            # Ours now (own pending, or just claimed): other consumers' entries in the
            # same id range would crowd ours out of the reply.
            counts: dict[str, int] = {}
            start = ids[0]
            while True:  # page: our other pending entries may lie in the same range
                page = self.client.xpending_range(
                    stream,
                    self.group,
                    min=start,
                    max=ids[-1],
                    count=max(100, len(ids)),
                    consumername=self.name,
                )
                counts.update({_text(p["message_id"]): int(p["times_delivered"]) for p in page})
                if len(page) < max(100, len(ids)) or all(i in counts for i in ids):
                    break
                start = "(" + _text(page[-1]["message_id"])
            for entry_id, values in present:
                key = _text(entry_id)
                entries.append(Entry(stream, key, _fields(values), counts.get(key, 1)))
        return entries

    # --- handling --------------------------------------------------------------------

    def _handle(self, entries: list[Entry]) -> None:
        fresh = []
        for entry in entries:
            if entry.deliveries > self.max_deliveries:
                self._to_dead(
                    entry,
                    f"delivered {entry.deliveries} times without an answer (the consumer "
                    "crashed or hung while handling it)",
                )
            else:
                fresh.append(entry)
        if not fresh:
            return
        try:
            self.handler(fresh)
        except Exception as exc:
            if len(fresh) == 1:
                self._failed(fresh[0], exc)
                return
            log.warning(
                "consumer.batch_failed",
                group=self.group,
                entries=len(fresh),
                error=f"{type(exc).__name__}: {exc}",
                note="trying each entry alone",
            )
            for entry in fresh:
                try:
                    self.handler([entry])
                except Exception as single:
                    self._failed(entry, single)
                else:
                    self._ack([entry])
        else:
            self._ack(fresh)

    def _ack(self, entries: Sequence[Entry]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for stream in {e.stream for e in entries}:
            ids = [e.id for e in entries if e.stream == stream]
            pipe.xack(stream, self.group, *ids)
            if stream == self.requeue:  # read by this group only: done with it
                pipe.xdel(stream, *ids)
        pipe.execute()
        for entry in entries:
            self._retry_due.pop((entry.stream, entry.id), None)
        self.stats.handled += len(entries)

    def _failed(self, entry: Entry, exc: BaseException) -> None:
        self.stats.failed += 1
        error = f"{type(exc).__name__}: {exc}"
        if entry.deliveries >= self.max_deliveries:
            self._to_dead(entry, error)
            return
        delay = min(self.retry_backoff_max, self.retry_backoff * 2 ** (entry.deliveries - 1))
        self._retry_due[(entry.stream, entry.id)] = time.monotonic() + delay
        log.warning(
            "consumer.handler_failed",
            stream=entry.stream,
            entry_id=entry.id,
            group=self.group,
            deliveries=entry.deliveries,
            max_deliveries=self.max_deliveries,
            retry_in=round(delay, 3),
            error=error,
        )

    def _to_dead(self, entry: Entry, error: str) -> None:
        self._retry_due.pop((entry.stream, entry.id), None)
        if entry.stream == self.dead_stream:
            # A consumer of the dead letters themselves: dead-lettering the entry again
            # would feed it back to this very group for ever. It stays on the stream.
            self.client.xack(entry.stream, self.group, entry.id)
            self.stats.dead += 1
            log.error(
                "consumer.gave_up",
                stream=entry.stream,
                entry_id=entry.id,
                group=self.group,
                deliveries=entry.deliveries,
                error=error,
                note="acknowledged for this group; the dead letter itself stays",
            )
            return
        origin_stream, origin_id = entry.origin
        record = {
            "source": "consumer",
            "stage": "consumer",
            "reason": error,
            "error": error,
            "stream": origin_stream,
            "entry_id": origin_id,
            "group": self.group,
            "consumer": self.name,
            "deliveries": entry.deliveries,
            "fields": {k: v for k, v in entry.fields.items() if k != SEQ_FIELD},
        }
        args: list[str] = [self.group, entry.id, "1" if entry.stream == self.requeue else "0"]
        for name, value in record_fields("dead", record).items():
            args += [name, value]
        dead_id = self._dead_letter(
            keys=[self.dead_stream, seq_key(self.dead_stream), entry.stream], args=args
        )
        self.stats.dead += 1
        log.error(
            "consumer.dead_letter",
            stream=entry.stream,
            entry_id=entry.id,
            group=self.group,
            deliveries=entry.deliveries,
            dead_letter=_text(dead_id),
            error=error,
        )

    # --- signals ---------------------------------------------------------------------

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("consumer.stopping", signal=signal.Signals(signum).name)
            self.stop()

        return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _fields(values: dict[bytes | str, bytes | str]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in values.items()}

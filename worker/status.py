"""``ingest status``: one screen for an operator.

What it shows, and where each part comes from:

* Redis — INFO (version, memory, maxmemory, AOF); the URL is shown without a password.
* Celery queues — kombu's Redis transport keeps each queue as a list named after it, and
  messages sent with a priority in sub-lists ``<queue>\\x06\\x16<step>``; both are
  summed. In-flight (delivered, unacknowledged) tasks are the fields of kombu's
  ``unacked`` hash.
* Workers — a broadcast ping with a short timeout (no worker: an empty list, not a hang).
* Streams — ``pipelines.streams.stream_progress``: each group's consumers, lag, pending
  and backlog; a red line when the articles stream's backlog pauses ingestion, a yellow
  one when a stream is held above its cap (``stream_max_len``) by a group.
* Dead letters — the dead stream's length and its newest entries (document and consumer
  dead letters carry different fields; whatever is there is shown).
* Feeds — counts by status and the feeds that fail, from ``pipelines.feedstore``.
* Last hour — entries appended to each stream in the last hour, from the ``seq`` field
  every append carries (two one-entry reads), counted in bounded chunks without it.
* Scheduler — the heartbeat hash the tick writes, and a deferral for backpressure.

``gather_status`` reads (plain dataclasses, JSON-ready through ``Status.to_dict``);
``render_status`` draws them with rich. Reading is separate so tests and ``--json`` see
exactly what the screen shows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import redis
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from config.settings import Settings
from pipelines.feedstore import FeedState, list_feeds
from pipelines.publish import SEQ_FIELD
from pipelines.streams import GroupProgress, StreamProgress, backlog_pressure, stream_progress
from worker.deadletters import DeadLetter, list_dead

SCHEDULER_KEY = "ingest:scheduler"  # written by worker.polling's tick (not imported: it
# would load the task modules and their settings just to read one key name)
UNACKED_KEY = "unacked"  # kombu's Redis transport: delivery tag → message, until acked
PRIORITY_SEP = "\x06\x16"  # kombu's separator between a queue and its priority step
PRIORITY_STEPS = (3, 6, 9)  # kombu's default steps above 0 (0 is the queue itself)
HOUR = 3600
COUNT_CHUNK = 1000  # entries per XRANGE when an entry carries no seq
COUNT_LIMIT = 100_000  # counting without seq stops here: a lower bound, never a stall
DEAD_LETTERS_SHOWN = 5
FAILING_FEEDS_SHOWN = 10
# XTRIM MAXLEN ~ removes whole radix-tree nodes (stream-node-max-entries, 100 by
# default), so a stream a little above its cap is normal and not worth a warning.
TRIM_SLACK = 100
# Feed statuses that need an operator's eye, worst first.
PROBLEM_STATUSES = ("failing", "challenge", "backoff", "disabled")


# --- the data ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedisStatus:
    url: str  # without a password
    version: str
    used_memory_human: str
    maxmemory: int  # bytes; 0: no limit
    maxmemory_human: str
    maxmemory_policy: str
    aof: bool


@dataclass(frozen=True, slots=True)
class QueueStatus:
    name: str
    length: int  # waiting messages, priority sub-queues included


@dataclass(frozen=True, slots=True)
class GroupStatus:
    name: str
    consumers: int
    pending: int
    lag: int | None  # None: unknown (entries without seq, Redis < 7)
    backlog: int | None
    last_delivered_id: str


@dataclass(frozen=True, slots=True)
class StreamStatus:
    label: str  # articles, duplicates, dead
    key: str
    length: int
    max_len: int
    last_hour: int | None  # entries appended in the last hour; None: not counted
    last_hour_exact: bool  # False: counting stopped at COUNT_LIMIT (a lower bound)
    groups: tuple[GroupStatus, ...]
    held_by: str | None  # over its cap: the group whose oldest needed entry holds it
    over_cap: bool  # above max_len by more than approximate trimming leaves
    pressure: str | None  # ingestion paused: why (articles stream only)


@dataclass(frozen=True, slots=True)
class DeadLetterStatus:
    id: str
    at: str | None  # ISO time, from the entry id
    source: str  # "document" or "consumer"
    stage: str | None
    reason: str | None
    doc_id: str | None = None
    source_ref: str | None = None
    stream: str | None = None
    entry_id: str | None = None
    group: str | None = None
    consumer: str | None = None
    deliveries: int | None = None


@dataclass(frozen=True, slots=True)
class FailingFeed:
    url: str
    name: str | None
    status: str
    last_poll_at: str | None
    consecutive_errors: int
    error: str | None


@dataclass(frozen=True, slots=True)
class FeedsStatus:
    total: int
    by_status: dict[str, int]
    failing: tuple[FailingFeed, ...]  # at most FAILING_FEEDS_SHOWN
    failing_total: int


@dataclass(frozen=True, slots=True)
class SchedulerStatus:
    last_tick_at: str | None
    seconds_since_tick: float | None
    ticks: int
    stale: bool  # no tick for several intervals: is a beat running?
    deferred_at: str | None
    deferred_reason: str | None


@dataclass(frozen=True, slots=True)
class Status:
    at: str  # Redis server time, ISO
    redis: RedisStatus
    queues: tuple[QueueStatus, ...]
    unacked: int
    workers: tuple[str, ...] | None  # None: the ping itself failed
    workers_error: str | None
    streams: tuple[StreamStatus, ...]
    dead_letters: int
    recent_dead_letters: tuple[DeadLetterStatus, ...]
    feeds: FeedsStatus
    scheduler: SchedulerStatus
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- gathering -----------------------------------------------------------------------


def _text(value: bytes | str | None) -> str | None:
    if value is None:
        return None
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def safe_url(client: redis.Redis) -> str:
    """The client's address without its password (the username is kept: it helps)."""
    kwargs = client.connection_pool.connection_kwargs
    user = kwargs.get("username")
    auth = f"{user}@" if user else ""
    if kwargs.get("path"):
        return f"unix://{auth}{kwargs['path']}?db={kwargs.get('db', 0)}"
    scheme = "rediss" if "SSL" in client.connection_pool.connection_class.__name__ else "redis"
    return f"{scheme}://{auth}{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db', 0)}"


def _redis_status(client: redis.Redis) -> RedisStatus:
    info = client.info()
    return RedisStatus(
        url=safe_url(client),
        version=str(info.get("redis_version", "?")),
        used_memory_human=str(info.get("used_memory_human", "?")),
        maxmemory=int(info.get("maxmemory", 0)),
        maxmemory_human=str(info.get("maxmemory_human", "0B")),
        maxmemory_policy=str(info.get("maxmemory_policy", "?")),
        aof=bool(int(info.get("aof_enabled", 0))),
    )


def _queues(client: redis.Redis, names: tuple[str, ...]) -> tuple[tuple[QueueStatus, ...], int]:
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.llen(name)
        for step in PRIORITY_STEPS:
            pipe.llen(f"{name}{PRIORITY_SEP}{step}")
    pipe.hlen(UNACKED_KEY)
    replies = pipe.execute()
    per = 1 + len(PRIORITY_STEPS)
    queues = tuple(
        QueueStatus(name, sum(int(n) for n in replies[i * per : (i + 1) * per]))
        for i, name in enumerate(names)
    )
    return queues, int(replies[-1])


def _ping_workers(timeout: float) -> tuple[tuple[str, ...] | None, str | None]:
    # Imported here: the Celery app is only needed for the ping.
    from worker.app import app

    try:
        replies = app.control.ping(timeout=timeout) or []
    except Exception as exc:  # the screen shows why instead of failing
        return None, f"{type(exc).__name__}: {exc}"
    return tuple(sorted(name for reply in replies for name in reply)), None


def _id_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _seq(fields: dict[bytes, bytes]) -> int | None:
    raw = fields.get(SEQ_FIELD.encode())
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def count_since(client: redis.Redis, stream: str, since_ms: int) -> tuple[int, bool]:
    """Entries of ``stream`` with an id at or after ``since_ms``, and whether the count is
    exact. With ``seq`` on the newest entry and on the first one in the window the count
    is their difference plus one; otherwise the window is read in chunks, at most
    COUNT_LIMIT entries (then the count is a lower bound)."""
    newest = client.xrevrange(stream, count=1)
    if not newest or _id_ms(_text(newest[0][0]) or "0") < since_ms:
        return 0, True
    first = client.xrange(stream, min=f"{since_ms}-0", count=1)
    if first:
        last_seq, first_seq = _seq(newest[0][1]), _seq(first[0][1])
        # A counter that went backwards (reset by hand) is no measure: count instead.
        if last_seq is not None and first_seq is not None and last_seq >= first_seq:
            return last_seq - first_seq + 1, True
    counted, start = 0, f"{since_ms}-0"
    while (want := min(COUNT_CHUNK, COUNT_LIMIT - counted)) > 0:
        chunk = client.xrange(stream, min=start, count=want)
        counted += len(chunk)
        if len(chunk) < want:
            return counted, True
        # The id right after the last one read ("(" exclusive ranges need Redis 6.2).
        ms, seq = _id_key(_text(chunk[-1][0]) or "0-0")
        start = f"{ms}-{seq + 1}"
    return counted, False


def _holder(progress: StreamProgress) -> str | None:
    """The group whose oldest pending or undelivered entry is the oldest of all: the one
    retention may not trim past (pipelines/streams.py), so it holds the stream up."""
    needed = [
        (_id_key(entry_id), group.name)
        for group in progress.groups
        for entry_id in (group.first_pending_id, group.first_undelivered_id)
        if entry_id
    ]
    return min(needed)[1] if needed else None


def _group_status(group: GroupProgress) -> GroupStatus:
    return GroupStatus(
        name=group.name,
        consumers=group.consumers,
        pending=group.pending,
        lag=group.lag,
        backlog=group.backlog,
        last_delivered_id=group.last_delivered_id,
    )


def _stream_status(
    client: redis.Redis, label: str, key: str, settings: Settings, since_ms: int
) -> StreamStatus:
    progress = stream_progress(client, key)
    last_hour, exact = count_since(client, key, since_ms)
    holder = _holder(progress) if progress.length > settings.stream_max_len else None
    over_cap = holder is not None or progress.length > settings.stream_max_len + TRIM_SLACK
    pressure = None
    if key == settings.articles_stream:  # backpressure watches the articles stream only
        found = backlog_pressure(progress, settings.backlog_high_water)
        pressure = found.describe() if found else None
    return StreamStatus(
        label=label,
        key=key,
        length=progress.length,
        max_len=settings.stream_max_len,
        last_hour=last_hour,
        last_hour_exact=exact,
        groups=tuple(_group_status(g) for g in progress.groups),
        held_by=holder,
        over_cap=over_cap,
        pressure=pressure,
    )


def _dead_letter(letter: DeadLetter) -> DeadLetterStatus:
    """The screen's view of a dead letter (parsed by worker.deadletters)."""
    record = letter.record

    def text(name: str) -> str | None:
        value = record.get(name)
        return None if value is None else str(value)

    deliveries = record.get("deliveries")
    try:
        deliveries = None if deliveries is None else int(deliveries)
    except (TypeError, ValueError):
        deliveries = None
    consumer = letter.kind == "consumer"
    return DeadLetterStatus(
        id=letter.entry_id,
        at=letter.at.isoformat(timespec="seconds"),
        source=letter.kind,
        stage=text("stage") or ("consumer" if consumer else None),
        reason=text("reason") or text("error"),
        doc_id=text("doc_id"),
        source_ref=text("source_ref"),
        stream=text("stream"),
        entry_id=text("entry_id"),
        group=text("group"),
        consumer=text("consumer"),
        deliveries=deliveries,
    )


def _feeds_status(client: redis.Redis) -> FeedsStatus:
    feeds = list_feeds(client)

    def status_of(feed: FeedState) -> str:
        # A feed the list switched off (enabled: false) is disabled whatever it last did.
        return "disabled" if not feed.enabled else feed.status

    counts = Counter(status_of(f) for f in feeds)
    problems = sorted(
        (f for f in feeds if status_of(f) in PROBLEM_STATUSES),
        key=lambda f: (PROBLEM_STATUSES.index(status_of(f)), -f.consecutive_errors, f.url),
    )
    shown = tuple(
        FailingFeed(
            url=f.url,
            name=f.name,
            status=status_of(f),
            last_poll_at=f.last_poll_at,
            consecutive_errors=f.consecutive_errors,
            error=f.last_error or f.status_reason,
        )
        for f in problems[:FAILING_FEEDS_SHOWN]
    )
    return FeedsStatus(len(feeds), dict(sorted(counts.items())), shown, len(problems))


def _scheduler_status(client: redis.Redis, settings: Settings, now: datetime) -> SchedulerStatus:
    raw = {k.decode(): v.decode() for k, v in client.hgetall(SCHEDULER_KEY).items()}
    last = raw.get("last_tick_at")
    ago = None
    if last:
        try:
            moment = datetime.fromisoformat(last)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            ago = max(0.0, (now - moment).total_seconds())
        except ValueError:
            ago = None
    # A few missed ticks can be a busy worker; many mean no beat (or no worker) runs.
    stale = ago is None or ago > max(3 * settings.tick_interval, 30.0)
    return SchedulerStatus(
        last_tick_at=last,
        seconds_since_tick=None if ago is None else round(ago, 1),
        ticks=int(raw.get("ticks") or 0),
        stale=stale,
        deferred_at=raw.get("deferred_at"),
        deferred_reason=raw.get("deferred_reason"),
    )


def _warnings(status: Status) -> tuple[str, ...]:
    """The problems, one line each, shown above everything else."""
    found: list[str] = []
    for stream in status.streams:
        if stream.pressure:
            found.append(f"ingestion paused: {stream.pressure}")
        if stream.over_cap:
            why = (
                f"held by group {stream.held_by} (retention keeps what it has not acknowledged)"
                if stream.held_by
                else "retention has not trimmed it yet"
            )
            found.append(
                f"{stream.key} has {stream.length} entries, above its cap of {stream.max_len}: "
                f"{why}"
            )
    if status.workers is None:
        found.append(f"workers unknown: the ping failed ({status.workers_error})")
    elif not status.workers:
        found.append("no worker answers: queued tasks wait (`ingest run` or `ingest worker`)")
    scheduler = status.scheduler
    if scheduler.deferred_reason:
        found.append(f"scheduler defers polls: {scheduler.deferred_reason}")
    if scheduler.stale:
        found.append(
            "no scheduler tick yet (is `ingest beat` running?)"
            if scheduler.last_tick_at is None
            else f"no scheduler tick for {scheduler.seconds_since_tick:.0f} s "
            "(is `ingest beat` running?)"
        )
    if status.feeds.failing_total:
        found.append(f"{status.feeds.failing_total} feeds need attention")
    return tuple(found)


def gather_status(client: redis.Redis, settings: Settings, *, ping_timeout: float = 1.0) -> Status:
    """Everything the status screen shows. Raises redis errors when Redis is gone."""
    from worker.app import QUEUES

    # Redis's clock, not ours: stream ids and the "last hour" window come from it.
    seconds, micros = client.time()
    now = datetime.fromtimestamp(seconds + micros / 1e6, UTC)
    since_ms = int(seconds * 1000 + micros // 1000) - HOUR * 1000
    queues, unacked = _queues(client, tuple(QUEUES))
    streams = tuple(
        _stream_status(client, label, getattr(settings, f"{label}_stream"), settings, since_ms)
        for label in ("articles", "duplicates", "dead")
    )
    recent = list_dead(client, settings, count=DEAD_LETTERS_SHOWN)
    dead = tuple(_dead_letter(letter) for letter in reversed(recent))  # newest first
    redis_status = _redis_status(client)
    feeds = _feeds_status(client)
    scheduler = _scheduler_status(client, settings, now)
    workers, workers_error = _ping_workers(ping_timeout)  # last: it takes the whole timeout
    status = Status(
        at=now.isoformat(timespec="seconds"),
        redis=redis_status,
        queues=queues,
        unacked=unacked,
        workers=workers,
        workers_error=workers_error,
        streams=streams,
        dead_letters=streams[-1].length,
        recent_dead_letters=dead,
        feeds=feeds,
        scheduler=scheduler,
    )
    return replace(status, warnings=_warnings(status))


# --- rendering -----------------------------------------------------------------------


def _panel(body: Any, title: str) -> Panel:
    # Not expanded: piped output is 200 columns wide, and boxes that wide are hard to read.
    return Panel(body, title=title, title_align="left", expand=False)


def _num(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _redis_panel(status: Status) -> Panel:
    r = status.redis
    memory = f"{r.used_memory_human} used, max " + (
        f"{r.maxmemory_human} ({r.maxmemory_policy})" if r.maxmemory else "none (0)"
    )
    lines = [
        f"[green]reachable[/] {escape(r.url)} · Redis {r.version}",
        f"memory {memory} · AOF " + ("[green]on[/]" if r.aof else "[yellow]off[/]"),
    ]
    return _panel("\n".join(lines), "Redis")


def _celery_panel(status: Status) -> Panel:
    table = Table(box=None, show_header=True, pad_edge=False)
    for column in ("queue", "waiting"):
        table.add_column(column, justify="right" if column == "waiting" else "left")
    for queue in status.queues:
        table.add_row(queue.name, _num(queue.length))
    table.add_row("[dim]in flight (unacked)[/]", _num(status.unacked))
    if status.workers is None:
        workers = f"[red]ping failed:[/] {escape(status.workers_error or '')}"
    elif status.workers:
        workers = f"[green]{len(status.workers)} online:[/] " + ", ".join(
            escape(w) for w in status.workers
        )
    else:
        workers = "[red]no worker answers[/]"
    return _panel(Group(table, f"workers: {workers}"), "Celery")


def _streams_panel(status: Status) -> Panel:
    table = Table(box=None, pad_edge=False)
    columns = ("stream", "length", "last hour", "group", "consumers", "lag", "pending", "backlog")
    for column in columns:
        table.add_column(column, justify="left" if column in ("stream", "group") else "right")
    for stream in status.streams:
        hour = _num(stream.last_hour) + ("" if stream.last_hour_exact else "+")
        length = _num(stream.length)
        if stream.over_cap:
            length = f"[yellow]{length}[/]"
        groups = stream.groups or (None,)
        for index, group in enumerate(groups):
            head = (escape(stream.key), length, hour) if index == 0 else ("", "", "")
            if group is None:
                table.add_row(*head, "[dim]no groups[/]", "", "", "", "")
                continue
            table.add_row(
                *head,
                escape(group.name),
                str(group.consumers),
                _num(group.lag),
                _num(group.pending),
                _num(group.backlog),
            )
    lines: list[Any] = [table]
    for stream in status.streams:
        if stream.pressure:
            lines.append(f"[bold red]ingestion paused:[/] {escape(stream.pressure)}")
        if stream.over_cap:
            holder = (
                f"held by group {escape(stream.held_by)}" if stream.held_by else "not trimmed yet"
            )
            lines.append(
                f"[yellow]{escape(stream.key)} is above its cap[/] "
                f"({stream.length:,} > {stream.max_len:,}): {holder}"
            )
    return _panel(Group(*lines), "Streams")


def _dead_panel(status: Status) -> Panel:
    style = "red" if status.dead_letters else "green"
    head = f"[{style}]{status.dead_letters:,} dead letters[/]"
    if not status.recent_dead_letters:
        return _panel(head, "Dead letters")
    table = Table(box=None, pad_edge=False)
    for column in ("time", "kind", "stage", "what", "reason"):
        table.add_column(column, overflow="fold")
    for letter in status.recent_dead_letters:
        if letter.source == "consumer":
            what = f"group {letter.group} on {letter.stream} {letter.entry_id}"
            if letter.deliveries is not None:
                what += f" ({letter.deliveries} deliveries)"
        else:
            what = letter.source_ref or letter.doc_id or ""
        table.add_row(
            (letter.at or "").replace("T", " ")[:19],
            letter.source,
            letter.stage or "",
            escape(what),
            escape((letter.reason or "")[:200]),
        )
    return _panel(Group(head + " · newest:", table), "Dead letters")


def _feeds_panel(status: Status) -> Panel:
    feeds = status.feeds
    colors = {"ok": "green", "failing": "red", "backoff": "yellow", "challenge": "magenta"}
    counts = ", ".join(
        f"[{colors.get(name, 'default')}]{name} {count}[/]"
        for name, count in feeds.by_status.items()
    )
    head = f"{feeds.total} feeds" + (f": {counts}" if counts else "")
    if not feeds.failing:
        return _panel(head, "Feeds")
    table = Table(box=None, pad_edge=False)
    for column in ("feed", "status", "errors", "last poll", "last error"):
        table.add_column(column, overflow="fold")
    for feed in feeds.failing:
        table.add_row(
            escape(f"{feed.name}\n{feed.url}" if feed.name else feed.url),
            f"[{colors.get(feed.status, 'dim')}]{feed.status}[/]",
            str(feed.consecutive_errors),
            (feed.last_poll_at or "—").replace("T", " ")[:19],
            escape((feed.error or "")[:120]),
        )
    parts: list[Any] = [head, table]
    if feeds.failing_total > len(feeds.failing):
        parts.append(f"[dim]… and {feeds.failing_total - len(feeds.failing)} more[/]")
    return _panel(Group(*parts), "Feeds")


def _scheduler_panel(status: Status) -> Panel:
    s = status.scheduler
    if s.last_tick_at is None:
        tick = "[yellow]no tick yet[/]"
    else:
        ago = f"{s.seconds_since_tick:.0f} s ago" if s.seconds_since_tick is not None else "?"
        style = "yellow" if s.stale else "green"
        tick = f"last tick [{style}]{ago}[/] ({s.last_tick_at}), {s.ticks:,} ticks"
    lines = [tick]
    if s.deferred_reason or s.deferred_at:
        lines.append(
            f"[bold red]polls deferred[/] since {s.deferred_at or '?'}: "
            f"{escape(s.deferred_reason or '')}"
        )
    return _panel("\n".join(lines), "Scheduler")


def render_status(status: Status, console: Console) -> None:
    """Draw the status screen: problems first, then each part in a panel."""
    console.print(f"[bold]feed-ingest status[/] at {status.at}")
    for warning in status.warnings:
        red = warning.startswith(("ingestion paused", "no worker", "scheduler defers"))
        console.print(f"[{'red' if red else 'yellow'}]• {escape(warning)}[/]")
    for panel in (
        _redis_panel(status),
        _celery_panel(status),
        _streams_panel(status),
        _dead_panel(status),
        _feeds_panel(status),
        _scheduler_panel(status),
    ):
        console.print(panel)

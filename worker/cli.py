"""The ``ingest`` command line."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from config.settings import Settings, SettingsError, defaults, env_var, get_settings
from worker.logs import configure_logging
from worker.runtime import NoRedisError, require_redis_url

cli = typer.Typer(
    help="feed-ingest: poll feeds, clean and deduplicate articles, publish them to Redis streams.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
rules_cli = typer.Typer(help="Boilerplate rule packs.", no_args_is_help=True)
cli.add_typer(rules_cli, name="rules")
feeds_cli = typer.Typer(help="Feeds: add, list, remove, poll now.", no_args_is_help=True)
cli.add_typer(feeds_cli, name="feeds")
dead_cli = typer.Typer(help="Dead letters: list, requeue.", no_args_is_help=True)
cli.add_typer(dead_cli, name="dead")

# Wide when piped: tables in logs and scripts should not wrap at 80 columns.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 200)


def _settings(component: str) -> Settings:
    try:
        settings = get_settings()
    except SettingsError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    configure_logging(settings, component)
    return settings


def _redis(settings: Settings) -> redis.Redis:
    try:
        url = require_redis_url(settings)
    except NoRedisError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        err.print(f"[red]error:[/] Redis at {url} does not answer: {exc}")
        raise typer.Exit(2) from exc
    return client


def _celery_argv(settings: Settings, *args: str) -> list[str]:
    return [*args, f"--loglevel={settings.log_level.upper()}"]


# --- the service ---------------------------------------------------------------------


@cli.command()
def run(
    seed: Annotated[
        bool, typer.Option(help="Replay seeds_dir on the first start of the embedded default")
    ] = True,
) -> None:
    """Run the whole service: embedded Redis (unless REDIS_URL), worker, scheduler, Flower.
    Ctrl-C stops everything cleanly."""
    from worker.service import Service

    settings = _settings("run")
    raise typer.Exit(Service(settings, seed=seed).run())


@cli.command()
def worker(
    queues: Annotated[str, typer.Option(help="Queues to consume, comma-separated")] = (
        "ingest,feeds,scheduler"
    ),
    concurrency: Annotated[
        int | None, typer.Option(help="Processes (default: the worker_concurrency setting)")
    ] = None,
    name: Annotated[str, typer.Option(help="Node name (%h: host name)")] = "ingest@%h",
    pool: Annotated[str, typer.Option(help="Celery pool: prefork, threads, solo")] = "prefork",
) -> None:
    """Start a Celery worker (for deployment; `ingest run` starts one for you)."""
    settings = _settings("worker")
    _redis(settings).close()
    from worker.app import app

    procs = concurrency or settings.worker_concurrency or os.cpu_count() or 1
    app.worker_main(
        _celery_argv(settings, "worker", "-Q", queues, "-n", name, "-c", str(procs), "-P", pool)
    )


@cli.command()
def beat() -> None:
    """Start the scheduler. Only one is active even if several run (a lock in Redis)."""
    settings = _settings("beat")
    client = _redis(settings)
    _load_feed_list(settings, client)
    client.close()
    from worker.app import app

    app.start(_celery_argv(settings, "beat"))


@cli.command()
def flower(
    port: Annotated[int | None, typer.Option(help="Port (default: flower_port)")] = None,
    address: Annotated[str | None, typer.Option(help="Address (default: flower_address)")] = None,
) -> None:
    """Start Flower, the web monitor for tasks and workers."""
    settings = _settings("flower")
    _redis(settings).close()
    from worker.app import app

    if settings.flower_basic_auth:
        # Flower reads it from the environment; on the command line `ps` would show it.
        os.environ["FLOWER_BASIC_AUTH"] = settings.flower_basic_auth
    app.start(
        [
            "flower",
            f"--address={address or settings.flower_address}",
            f"--port={port or settings.flower_port}",
        ]
    )


# --- documents -------------------------------------------------------------------------


@cli.command()
def replay(
    paths: Annotated[list[Path], typer.Argument(help="Seed files or folders", exists=True)],
    wait: Annotated[bool, typer.Option(help="Wait for every document and print a summary")] = (
        False
    ),
    force: Annotated[bool, typer.Option(help="Bypass dedup: publish again")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits at most")] = 600.0,
    batch_size: Annotated[
        int | None, typer.Option(help="Documents per task (default: replay_batch_size)")
    ] = None,
) -> None:
    """Send seed documents through the Celery queue (the same path as feed entries)."""
    from worker.replay import send_replay, summarize_run, wait_for_run

    settings = _settings("cli")
    client = _redis(settings)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=False) as progress:
        sending = progress.add_task("sent", total=None)

        def on_sent(done: int, total: int) -> None:
            progress.update(sending, completed=done, total=total)

        sent = send_replay(
            client, paths, settings, force=force, batch_size=batch_size, on_progress=on_sent
        )
        if not wait:
            progress.stop()
            err.print(
                f"run [bold]{sent.run_id}[/]: {sent.sent} documents queued, "
                f"{sent.rejected} rejected. Watch them with `ingest tail --follow`."
            )
            raise typer.Exit(1 if sent.rejected else 0)
        _warn_without_worker()
        processing = progress.add_task("processed", total=sent.total)
        finished = wait_for_run(
            client,
            sent.run_id,
            sent.total,
            timeout=timeout,
            on_progress=lambda n: progress.update(processing, completed=n),
        )
    summary = summarize_run(client, sent.run_id)
    table = Table(title=f"replay {sent.run_id}")
    for column in ("published", "duplicates", "failed", "pending"):
        table.add_column(column, justify="right")
    counted = sum(summary.counts.values())
    table.add_row(
        str(summary.counts["published"]),
        str(summary.counts["duplicate"]),
        str(summary.counts["failed"]),
        str(sent.total - counted),
    )
    out.print(table)
    if summary.problems:
        details = Table(title="not published", show_lines=False)
        for column in ("status", "document", "reason"):
            details.add_column(column)
        for item in summary.problems:
            details.add_row(
                item["status"], item.get("source_ref") or item["doc_id"], item.get("reason", "")
            )
        out.print(details)
    if not finished:
        err.print(f"[yellow]timed out[/] after {timeout:g}s: {sent.total - counted} pending")
        raise typer.Exit(3)
    raise typer.Exit(1 if summary.counts["failed"] else 0)


def _warn_without_worker() -> None:
    from worker.app import app

    if not app.control.ping(timeout=2.0, limit=1):
        err.print(
            "[yellow]warning:[/] no worker answers: the documents wait in the queue until "
            "one runs (`ingest run`, or `ingest worker`)."
        )


STREAMS = {"articles": "articles_stream", "duplicates": "duplicates_stream", "dead": "dead_stream"}


def _entry_json(fields: dict[bytes, bytes]) -> dict[str, Any]:
    decoded = {k.decode(): v.decode() for k, v in fields.items()}
    for name in ("article", "record"):
        if name in decoded:
            return dict(json.loads(decoded[name]))
    return decoded


def _print_entry(entry_id: str, data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
        sys.stdout.flush()
        return
    if "title" in data and "text" in data:
        facts = [
            data.get("author"),
            data.get("published_at"),
            f"{data.get('word_count')} words",
            f"id {data.get('id')}",
        ]
        if data.get("update_of"):
            facts.append(f"update of story {data['update_of']}")
        elif data.get("story_id") not in (None, data.get("id")):
            facts.append(f"story {data['story_id']}")
        out.print(f"[dim]{entry_id}[/] [bold]{escape(data['title'])}[/]")
        out.print("  " + " · ".join(str(f) for f in facts if f), style="cyan")
        if data.get("removed"):
            out.print("  removed: " + ", ".join(data["removed"]), style="dim")
        out.print(escape("  " + data["text"][:280].replace("\n\n", " ¶ ")) + "…\n")
    elif "duplicate_of" in data:
        _print_duplicate(entry_id, data)
    else:
        out.print(f"[dim]{entry_id}[/] " + json.dumps(data, ensure_ascii=False)[:1000])


def _print_duplicate(entry_id: str, record: dict[str, Any]) -> None:
    """A duplicate, with the evidence a person checks it by (--json has all of it)."""
    evidence = record.get("evidence") or {}
    layer = record.get("layer")
    how = str(layer)
    if layer in ("near", "lead"):
        how += (
            f" (Jaccard {record.get('similarity') or 0:.2f}, "
            f"containment {record.get('containment') or 0:.2f})"
        )
    title = escape(str(evidence.get("title")))
    out.print(
        f"[dim]{entry_id}[/] [bold]{title}[/] is a duplicate of "
        f"[bold]{record.get('duplicate_of')}[/] by {how}"
    )
    facts = [evidence.get("url"), f"{evidence.get('word_count')} words", f"id {record.get('id')}"]
    out.print(escape("  " + " · ".join(str(f) for f in facts if f)), style="cyan")
    if evidence.get("matched"):
        out.print(escape(f"  matched: {evidence['matched']}") + "\n", style="dim")


@cli.command()
def tail(
    stream: Annotated[str, typer.Option(help="articles, duplicates or dead")] = "articles",
    as_json: Annotated[bool, typer.Option("--json", help="Raw JSON, one entry a line")] = False,
    count: Annotated[int, typer.Option(help="Entries shown from the end first")] = 10,
    follow: Annotated[bool, typer.Option(help="Then wait for new entries (Ctrl-C stops)")] = False,
) -> None:
    """Print entries of a downstream stream (ingest:articles by default)."""
    settings = _settings("cli")
    if stream not in STREAMS:
        err.print(f"[red]error:[/] unknown stream {stream!r}; one of {', '.join(STREAMS)}")
        raise typer.Exit(2)
    name = getattr(settings, STREAMS[stream])
    client = _redis(settings)
    last = "$"
    if count > 0:
        entries = list(reversed(client.xrevrange(name, count=count)))
        for entry_id, fields in entries:
            _print_entry(entry_id.decode(), _entry_json(fields), as_json)
        if entries:
            last = entries[-1][0].decode()
    if not follow:
        return
    if last == "$":  # pin the position now, so nothing added meanwhile is missed
        info = client.xinfo_stream(name) if client.exists(name) else None
        last = info["last-generated-id"].decode() if info else "0-0"
    try:
        while True:
            for _, entries in client.xread({name: last}, block=5000, count=100) or []:
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    _print_entry(last, _entry_json(fields), as_json)
    except KeyboardInterrupt:
        return


@cli.command()
def consume(
    group: Annotated[str, typer.Option(help="Consumer group (created if new)")],
    sink: Annotated[
        str,
        typer.Option(
            help="jsonl:PATH[?fsync=batch|off], stdout, an entry-point NAME[:ARG], or "
            "package.module:factory[:ARG]"
        ),
    ],
    stream: Annotated[
        str, typer.Option(help="articles, duplicates, dead, or a stream's name")
    ] = "articles",
    name: Annotated[
        str | None, typer.Option(help="Consumer name, stable across restarts (default: host-pid)")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Entries per read")] = 100,
    claim_idle: Annotated[
        float,
        typer.Option(help="Seconds an entry may stay pending before another consumer takes it"),
    ] = 60.0,
    max_deliveries: Annotated[
        int, typer.Option(help="Deliveries of a failing entry before it is dead-lettered")
    ] = 5,
    retry_backoff: Annotated[
        float, typer.Option(help="Seconds before a failed entry's first retry (doubling)")
    ] = 1.0,
    start: Annotated[
        str, typer.Option(help="Where a new group starts: 'all' retained entries, or 'new'")
    ] = "all",
    until_idle: Annotated[
        float | None, typer.Option(help="Exit after this many seconds with nothing to read")
    ] = None,
) -> None:
    """Consume a stream as a consumer group into a sink: acknowledged after the sink
    took each batch, crashed consumers' entries taken over, failing entries
    dead-lettered. SIGTERM or Ctrl-C stops after the batch in hand."""
    import socket

    from pipelines.downstream import Consumer
    from pipelines.sinks import SinkError, load_sink

    settings = _settings("consume")
    stream_name = getattr(settings, STREAMS[stream]) if stream in STREAMS else stream
    if start not in ("all", "new"):
        err.print("[red]error:[/] --start is 'all' or 'new'")
        raise typer.Exit(2)
    client = _redis(settings)
    try:
        target = load_sink(sink)
    except (SinkError, OSError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    consumer = Consumer(
        client,
        stream_name,
        group,
        name or f"{socket.gethostname()}-{os.getpid()}",
        target.write,
        batch_size=batch_size,
        claim_idle=claim_idle,
        max_deliveries=max_deliveries,
        retry_backoff=retry_backoff,
        dead_stream=settings.dead_stream,
        start_at="0" if start == "all" else "$",
    )
    try:
        stats = consumer.run(until_idle=until_idle)
    finally:
        target.close()
    err.print(
        f"{stats.handled} handled, {stats.failed} failures, {stats.dead} dead-lettered, "
        f"{stats.claimed} taken over"
    )


@dead_cli.command("list")
def dead_list(
    count: Annotated[int, typer.Option(help="The newest N")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
) -> None:
    """The newest dead letters: when, what, why."""
    from worker.deadletters import list_dead

    settings = _settings("cli")
    client = _redis(settings)
    letters = list_dead(client, settings, count=count)
    if as_json:
        for letter in letters:
            sys.stdout.write(
                json.dumps({"id": letter.entry_id, **letter.record}, ensure_ascii=False) + "\n"
            )
        return
    total = client.xlen(settings.dead_stream)
    table = Table(title=f"{settings.dead_stream}: {total} dead letters, newest {len(letters)}")
    for column in ("id", "when", "kind", "what", "reason"):
        table.add_column(column)
    for letter in letters:
        table.add_row(
            letter.entry_id,
            letter.at.strftime("%Y-%m-%d %H:%M:%S"),
            letter.kind,
            escape(letter.subject),
            escape(letter.reason[:300]),
        )
    out.print(table)


@dead_cli.command("requeue")
def dead_requeue(
    ids: Annotated[list[str], typer.Argument(help="Dead letter ids (from `ingest dead list`)")],
) -> None:
    """Send dead letters back: a document through the ingest queue, a consumer's entry to
    its group's requeue stream. Each is removed from the dead letters once sent."""
    from worker.deadletters import RequeueError, requeue

    settings = _settings("cli")
    client = _redis(settings)
    failed = 0
    for entry_id in ids:
        try:
            where = requeue(client, settings, entry_id)
        except RequeueError as exc:
            err.print(f"[red]error:[/] {exc}")
            failed += 1
            continue
        out.print(f"{entry_id} requeued to {escape(where)}")
    raise typer.Exit(1 if failed else 0)


@cli.command()
def clean(
    paths: Annotated[list[Path], typer.Argument(help="Seed files or folders", exists=True)],
    explain: Annotated[bool, typer.Option(help="Show on stderr which rule removed what")] = False,
) -> None:
    """Clean files offline (no Redis, no Celery): one article JSON per line on stdout."""
    from pipelines.documents import DocumentError
    from pipelines.process import process_document
    from pipelines.rules import RuleError, rules_from_dir
    from pipelines.seeds import load_seed_files

    settings = _settings("cli")
    try:
        rules = rules_from_dir(settings.boilerplate_dir)
        zone = ZoneInfo(settings.default_timezone)
    except (RuleError, ZoneInfoNotFoundError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    failed = 0
    loaded_files = load_seed_files(
        paths, max_bytes=settings.max_document_bytes, teaser_max_words=settings.teaser_max_words
    )
    documents = []
    for loaded in loaded_files:
        if loaded.error:
            err.print(f"[red]failed[/] {loaded.path}: {loaded.error}")
            failed += 1
        documents.extend(loaded.documents)
    for document in documents:
        try:
            result = process_document(
                document, rules, default_tz=zone, max_share=settings.rule_max_share
            )
        except DocumentError as exc:
            err.print(f"[red]failed[/] {document.source_ref}: {exc.stage}: {exc.reason}")
            failed += 1
            continue
        sys.stdout.write(result.article.to_json() + "\n")
        if explain:
            err.print(f"[bold]{document.source_ref}[/]")
            for removal in result.cleaned.removals:
                where = "html " if removal.position < 0 else f"line {removal.position:>3}"
                note = "  [held back by the valve]" if removal.skipped else ""
                captured = f"  → {removal.captured}" if removal.captured else ""
                err.print(
                    f"  {where}  {removal.rule_id:<34} {removal.text[:70]!r}{captured}{note}",
                    highlight=False,
                )
    sys.stdout.flush()
    raise typer.Exit(1 if failed else 0)


# --- feeds -------------------------------------------------------------------------------


def _load_feed_list(settings: Settings, client: redis.Redis) -> None:
    from worker.feedlist import FeedListError, load_feed_list

    try:
        load_feed_list(settings, client)
    except FeedListError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc


def _when(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else "—"


@feeds_cli.command("add")
def feeds_add(
    url: Annotated[str, typer.Argument(help="The feed's http(s) address")],
    name: Annotated[str | None, typer.Option(help="A name for tables and logs")] = None,
    min_interval: Annotated[int | None, typer.Option(help="Seconds, for this feed")] = None,
    max_interval: Annotated[int | None, typer.Option(help="Seconds, for this feed")] = None,
    header: Annotated[
        list[str] | None, typer.Option(help="Extra request header, 'Name: value' (repeatable)")
    ] = None,
    user_agent: Annotated[str | None, typer.Option(help="A User-Agent of its own")] = None,
) -> None:
    """Add a feed (or update the one with this URL); it is polled at the next tick."""
    from pipelines.feedstore import add_feed

    settings = _settings("cli")
    if not re.match(r"^https?://\S+$", url):
        err.print(f"[red]error:[/] {url!r} is not an http(s) URL")
        raise typer.Exit(2)
    headers = {}
    for item in header or []:
        key, sep, value = item.partition(":")
        if not sep or not key.strip():
            err.print(f"[red]error:[/] header {item!r} is not 'Name: value'")
            raise typer.Exit(2)
        headers[key.strip()] = value.strip()
    state, new = add_feed(
        _redis(settings),
        url,
        now=datetime.now(UTC),
        name=name,
        min_interval=min_interval,
        max_interval=max_interval,
        headers=headers,
        user_agent=user_agent,
    )
    out.print(f"{'added' if new else 'updated'} {state.url} (id {state.id}); due now")


@feeds_cli.command("list")
def feeds_list(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per feed")] = False,
) -> None:
    """Every feed with its state: status, last and next poll, last HTTP status and error."""
    from dataclasses import asdict

    from pipelines.feedstore import DUE, list_feeds

    settings = _settings("cli")
    client = _redis(settings)
    feeds = list_feeds(client)
    due = {k.decode(): v for k, v in client.zrange(DUE, 0, -1, withscores=True)}
    if as_json:
        for feed in feeds:
            data = asdict(feed)
            data["next_poll_at"] = (
                datetime.fromtimestamp(due[feed.id], UTC).isoformat() if feed.id in due else None
            )
            sys.stdout.write(json.dumps(data) + "\n")
        return
    table = Table(title=f"{len(feeds)} feeds")
    for column in ("url", "status", "last poll", "next poll", "HTTP", "entries", "last error"):
        table.add_column(column, overflow="fold")
    for feed in feeds:
        next_at = datetime.fromtimestamp(due[feed.id], UTC).isoformat() if feed.id in due else None
        style = {
            "failing": "red",
            "backoff": "yellow",
            "challenge": "magenta",
            "disabled": "dim",
        }.get(feed.status, "")
        table.add_row(
            feed.url if not feed.name else f"{feed.name}\n{feed.url}",
            f"[{style}]{feed.status}[/]" if style else feed.status,
            _when(feed.last_poll_at),
            _when(next_at),
            str(feed.last_http_status or "—"),
            str(feed.entries_seen),
            (feed.last_error or "")[:120],
        )
    out.print(table)


@feeds_cli.command("remove")
def feeds_remove(url: Annotated[str, typer.Argument(help="The feed's address")]) -> None:
    """Remove a feed and its schedule (its articles stay on the streams)."""
    from pipelines.feedstore import find_feed, remove_feed

    settings = _settings("cli")
    client = _redis(settings)
    feed = find_feed(client, url)
    if feed is None:
        err.print(f"[red]error:[/] no feed with URL {url}")
        raise typer.Exit(1)
    remove_feed(client, feed)
    out.print(f"removed {feed.url}")


@feeds_cli.command("poll")
def feeds_poll(
    url: Annotated[str, typer.Argument(help="The feed's address")],
    wait: Annotated[bool, typer.Option(help="Wait for the poll and print its outcome")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait at most")] = 60.0,
) -> None:
    """Poll a feed now, whatever its schedule."""
    from pipelines.feedstore import find_feed, get_feed
    from worker.polling import poll_now

    settings = _settings("cli")
    client = _redis(settings)
    feed = find_feed(client, url)
    if feed is None:
        err.print(f"[red]error:[/] no feed with URL {url}; add it with `ingest feeds add`")
        raise typer.Exit(1)
    if not feed.enabled or feed.status == "disabled":
        err.print(
            f"[red]error:[/] {url} is disabled ({feed.status_reason or 'enabled: false'}); "
            "`ingest feeds add` enables it again"
        )
        raise typer.Exit(1)
    before = (feed.polls, feed.deferrals)
    poll_now(feed.id)
    if not wait:
        return
    _warn_without_worker()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = get_feed(client, feed.id)
        if state is not None and state.deferrals > before[1]:
            out.print(f"{state.url}: deferred, the host is busy; it will be polled shortly")
            raise typer.Exit(0)
        if state is not None and state.polls > before[0]:
            error = f", error: {state.last_error}" if state.last_error else ""
            out.print(
                f"{state.url}: {state.status}, HTTP {state.last_http_status or '—'}, "
                f"{state.last_new_entries} new entries{error}"
            )
            raise typer.Exit(1 if state.status in ("failing", "disabled") else 0)
        time.sleep(0.2)
    err.print(f"[yellow]timed out[/] after {timeout:g}s")
    raise typer.Exit(3)


# --- reference -----------------------------------------------------------------------------


@rules_cli.command("list")
def rules_list() -> None:
    """Show the boilerplate rule packs and their rules."""
    from pipelines.rules import RuleError, rules_from_dir

    settings = _settings("cli")
    try:
        ruleset = rules_from_dir(settings.boilerplate_dir)
    except RuleError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    table = Table(title=f"boilerplate rules ({settings.boilerplate_dir})", show_lines=True)
    for column in ("id", "where", "matches", "captures", "reason"):
        table.add_column(column, overflow="fold")
    for rule in ruleset.rules:
        matches = rule.pattern or rule.selector or rule.xpath or f"= {rule.equals_field}"
        if rule.text:
            matches += f"\ntext: {rule.text}"
        if rule.part == "suffix":
            matches += "\n(the end of the last line)"
        captures = rule.captures
        shown = (
            ", ".join(f"{k} ← {v}" for k, v in captures.items())
            if isinstance(captures, dict)
            else ", ".join(captures)
        )
        table.add_row(rule.id, rule.where, matches, shown, rule.reason)
    out.print(table)


@cli.command()
def schema(
    write: Annotated[bool, typer.Option(help="Write pipelines/article.schema.json")] = False,
) -> None:
    """Print the article JSON Schema (the contract with downstream)."""
    from pipelines.article import SCHEMA_FILE, json_schema_text

    text = json_schema_text()
    if write:
        SCHEMA_FILE.write_text(text, encoding="utf-8")
        err.print(f"wrote {SCHEMA_FILE}")
    else:
        sys.stdout.write(text)


@cli.command("settings")
def show_settings() -> None:
    """Show every setting: its environment variable, effective value and default."""
    settings = _settings("cli")
    table = Table(title="settings (environment over INGEST_CONFIG_FILE over defaults)")
    for column in ("setting", "variable", "value", "default"):
        table.add_column(column, overflow="fold")
    base = defaults()
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if name == "flower_basic_auth" and value:
            value = "***"
        table.add_row(name, env_var(name), str(value), str(base.get(name)))
    out.print(table)


@cli.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="The same facts as one JSON object")] = (
        False
    ),
    ping_timeout: Annotated[float, typer.Option(help="Seconds to wait for workers")] = 1.0,
) -> None:
    """One screen for an operator: Redis, queues, workers, streams and their consumer
    groups, dead letters, failing feeds, the last hour, the scheduler."""
    from worker.status import gather_status, render_status

    settings = _settings("cli")
    client = _redis(settings)  # no answer: it prints why and exits 2
    try:
        report = gather_status(client, settings, ping_timeout=ping_timeout)
    except redis.RedisError as exc:
        err.print(f"[red]error:[/] Redis stopped answering: {exc}")
        raise typer.Exit(2) from exc
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n")
        return
    render_status(report, out)


def main() -> None:
    cli()

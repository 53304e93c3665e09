"""Consumer throughput: articles per second through ``ingest consume`` into the JSONL sink,
beside a raw XREADGROUP/XACK loop on the same stream in the same run.

Starts its own Redis (no persistence, free port, own temp folder; stopped at the end, also
on SIGTERM) and fills ``ingest:articles`` with N real-sized articles: real ``Article``
objects built from the article bodies of the extraction-benchmark corpus
(``/work/shared/corpus/…/ground-truth.json``: 181 real news texts, median ~530 words; each
reused with its paragraphs rotated and its URL varied so that every article has its own
id), published with ``append_once``/``article_fields`` exactly as the workers do (entries
carry ``seq``, ``id``, ``schema_version``, ``article``). Without the corpus, synthetic
600-word texts are used. The fingerprint field is computed once per corpus text.

Then each measure reads the whole stream as its own consumer group (from 0), one after
the other, with the same batch size:

* baseline: a raw loop in this process, XREADGROUP COUNT n then one XACK per batch;
  the same writing each batch's raw ``article`` JSON to a file (one os.write per batch
  on an O_APPEND file, no fsync); the same writing the sink's own line format
  (``pipelines.sinks.entry_line``: the article checked and spliced into
  ``{"stream", "entry_id", "article"}``);
* the SDK in-process (``pipelines.downstream.Consumer``): with a no-op handler, with
  ``JsonlSink(fsync=False)`` and with ``JsonlSink`` (fsync each batch, the default);
* ``ingest consume --sink jsonl:PATH --until-idle 1`` as a real subprocess, with the
  default fsync policy and with ``?fsync=off``. Its rate is the consumption alone: from
  the group's first delivery to the moment the group has nothing pending and has been
  delivered the stream's last entry (polled with XINFO GROUPS every 5 ms); the start-up
  (process start to first delivery) and the tail (drained to exit: the until-idle wait
  and shutdown) are reported apart, with the end-to-end rate.

Every JSONL file is checked: N lines, N distinct article ids, N distinct entry ids.

    .venv/bin/python bench/consume.py [--articles 20000] [--batch-size 100]
        [--json figures.json] [--dir /somewhere/on/disk] [--profile]

CPU columns: the consumer's CPU (this process, or the CLI process during consumption)
and redis-server's, in ms per article. The sink files go under ``--dir`` (default: the
system temp folder); fsync figures mean something only on a real disk (not tmpfs).

At the default size a run takes about a minute on 2 cores (about 20 s of it filling the
stream), Redis holds ~230 MiB and each sink file is ~230 MB (deleted once checked).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import pstats
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
import structlog

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stack import cpu_seconds  # noqa: E402
from pipelines.article import Article, article_id  # noqa: E402
from pipelines.downstream import Consumer, Entry  # noqa: E402
from pipelines.neardup import fingerprint  # noqa: E402
from pipelines.publish import Append, append_once, article_fields  # noqa: E402
from pipelines.sanitize import paragraphs_html  # noqa: E402
from pipelines.sinks import JsonlSink, entry_line  # noqa: E402
from pipelines.text import content_hash, shorten, word_count  # noqa: E402
from pipelines.urls import alias_form, canonical_url  # noqa: E402
from worker.embedded_redis import EmbeddedRedis  # noqa: E402

STREAM = "ingest:articles"
CORPUS = Path("/work/shared/corpus/article-extraction-benchmark/ground-truth.json")
TTL = 14 * 86400  # the idempotency markers' horizon (the dedup TTL's default)
FILL_CHUNK = 200  # appends per append_once round trip while filling
POLL = 0.005  # seconds between XINFO GROUPS polls while the CLI runs
CLI_TIMEOUT = 1800.0


# --- the articles ---------------------------------------------------------------------


def corpus_texts(path: Path) -> list[tuple[str, str]]:
    """(url, clean text) of each article body in the corpus: paragraphs separated by one
    blank line, as the product's clean text is."""
    data = json.loads(path.read_text(encoding="utf-8"))
    texts = []
    for item in data.values():
        paragraphs = [
            " ".join(p.split()) for p in re.split(r"\n\s*\n", item.get("articleBody", ""))
        ]
        text = "\n\n".join(p for p in paragraphs if p)
        if text and item.get("url"):
            texts.append((item["url"], text))
    return texts


def synthetic_texts(count: int, rng: random.Random) -> list[tuple[str, str]]:
    """Fallback without the corpus: 600-word texts in 8–14 paragraphs."""
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(5000)
    ]
    texts = []
    for n in range(count):
        body = rng.choices(words, k=600)
        cuts = sorted(rng.sample(range(20, 580), rng.randint(7, 13)))
        paragraphs = [
            " ".join(body[a:b]).capitalize() + "."
            for a, b in zip([0, *cuts], [*cuts, 600], strict=True)
        ]
        texts.append((f"https://news{n % 40}.example/story/{n}", "\n\n".join(paragraphs)))
    return texts


def articles(count: int, texts: list[tuple[str, str]], rng: random.Random) -> Iterator[Article]:
    """``count`` distinct articles: text n is corpus text n mod len, its paragraphs rotated
    by n div len, its URL given a ``bench=n`` parameter (so its own id)."""
    fingerprints: dict[int, str | None] = {}
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    for n in range(count):
        base = n % len(texts)
        url, text = texts[base]
        paragraphs = text.split("\n\n")
        turn = (n // len(texts)) % len(paragraphs)
        paragraphs = paragraphs[turn:] + paragraphs[:turn]
        text = "\n\n".join(paragraphs)
        if base not in fingerprints:  # ~1 ms each: once per corpus text
            near = fingerprint(text)
            fingerprints[base] = near.packed().hex() if near else None
        parts = urlsplit(url)
        query = f"{parts.query}&bench={n}" if parts.query else f"bench={n}"
        page = urlunsplit(parts._replace(query=query, fragment=""))
        canonical = canonical_url(page)
        digest = content_hash(text)
        ident = article_id(alias_form(canonical) if canonical else None, digest)
        host = urlsplit(page).hostname or "example.invalid"
        published = now - timedelta(minutes=rng.randint(0, 7 * 24 * 60))
        yield Article(
            id=ident,
            story_id=ident,
            url=page,
            canonical_url=canonical,
            feed_url=f"https://{host}/feed.xml",
            guid=page,
            site=host,
            title=shorten(paragraphs[0], 90),
            author=rng.choice([None, "Staff", "Jane Doe", "John Smith"]),
            published_at=published,
            updated_at=None,
            fetched_at=published + timedelta(minutes=rng.randint(1, 30)),
            language="en",
            text=text,
            html=paragraphs_html((p, None) for p in paragraphs),
            summary=shorten(paragraphs[0], 300),
            categories=rng.sample(["world", "business", "tech", "politics", "sport"], k=2),
            image=f"https://{host}/img/{n}.jpg",
            word_count=word_count(text),
            content_hash=digest,
            fingerprint=fingerprints[base],
            removed=["share-buttons", "newsletter-signup"][: rng.randint(0, 2)],
            source_kind="feed",
            source_ref=page,
        )


def fill(client: redis.Redis, items: Iterator[Article]) -> tuple[int, int]:
    """Publish the articles as the workers do; returns (entries, bytes of article JSON)."""
    total = size = 0
    chunk: list[Append] = []

    def flush() -> None:
        results = append_once(client, chunk, ttl=TTL, delivery_id=f"bench-fill-{total}")
        assert all(r.created for r in results), "every article is new"
        chunk.clear()

    for article in items:
        fields = article_fields(article)
        size += len(fields["article"].encode())
        chunk.append(Append(STREAM, article.id, fields))
        total += 1
        if len(chunk) == FILL_CHUNK:
            flush()
    if chunk:
        flush()
    return total, size


# --- measures -----------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    seconds: float  # consumption time (wall)
    articles: int
    cpu: float | None  # consumer CPU seconds during it
    redis_cpu: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.articles / self.seconds


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def raw_loop(
    client: redis.Redis,
    redis_pid: int,
    group: str,
    batch: int,
    out: Path | None = None,
    *,
    lines: bool = False,
) -> Row:
    """XREADGROUP COUNT batch, then one XACK per batch, until the stream is drained;
    with ``out``, each batch's articles appended to it first (raw JSON, or with
    ``lines`` the sink's line format)."""
    client.xgroup_create(STREAM, group, id="0")
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if out else -1
    handled = 0
    redis_before, cpu_before = cpu_seconds([redis_pid]), time.process_time()
    start = time.perf_counter()
    try:
        while True:
            reply = client.xreadgroup(group, "raw-1", {STREAM: ">"}, count=batch)
            items = reply[0][1] if reply else []
            if not items:
                break
            if fd >= 0:
                if lines:
                    data = "".join(
                        entry_line(
                            Entry(
                                STREAM,
                                entry_id.decode(),
                                {"article": values[b"article"].decode()},
                                1,
                            )
                        )
                        for entry_id, values in items
                    ).encode()
                else:
                    data = b"".join(values[b"article"] + b"\n" for _, values in items)
                os.write(fd, data)
            client.xack(STREAM, group, *[entry_id for entry_id, _ in items])
            handled += len(items)
    finally:
        if fd >= 0:
            os.close(fd)
    elapsed = time.perf_counter() - start
    return Row(
        "",
        elapsed,
        handled,
        time.process_time() - cpu_before,
        cpu_seconds([redis_pid]) - redis_before,
    )


def sdk_run(
    client: redis.Redis,
    redis_pid: int,
    group: str,
    batch: int,
    expected: int,
    write: Callable[[Sequence[Entry]], None],
    profile: cProfile.Profile | None = None,
) -> Row:
    """The Consumer SDK in this process, stopped once it has handled every entry (so no
    idle wait is timed)."""
    handled = 0

    def handle(entries: Sequence[Entry]) -> None:
        nonlocal handled
        write(entries)
        handled += len(entries)
        if handled >= expected:
            consumer.stop()  # returns after this batch is acknowledged

    consumer = Consumer(client, STREAM, group, "sdk-1", handle, batch_size=batch, block=0.1)
    redis_before, cpu_before = cpu_seconds([redis_pid]), time.process_time()
    start = time.perf_counter()
    if profile is not None:
        profile.enable()
    stats = consumer.run()
    if profile is not None:
        profile.disable()
    elapsed = time.perf_counter() - start
    if stats.handled < expected:  # the SDK's own SIGTERM/SIGINT handler stopped it
        raise SystemExit(f"{group}: stopped after {stats.handled} of {expected} entries")
    return Row(
        "",
        elapsed,
        stats.handled,
        time.process_time() - cpu_before,
        cpu_seconds([redis_pid]) - redis_before,
    )


def _group(client: redis.Redis, group: str) -> dict[str, Any] | None:
    for info in client.xinfo_groups(STREAM):
        if _text(info["name"]) == group:
            return dict(info)
    return None


def cli_run(
    client: redis.Redis,
    redis_pid: int,
    env: dict[str, str],
    group: str,
    sink: str,
    batch: int,
    log: Path,
) -> Row:
    """``ingest consume`` as a subprocess, timed by polling its group (see the module
    doc). Raises SystemExit if it fails or does not drain the stream."""
    last_id = _text(client.xinfo_stream(STREAM)["last-generated-id"])
    command = [
        sys.executable,
        "-m",
        "worker",
        "consume",
        "--group",
        group,
        "--stream",
        STREAM,
        "--sink",
        sink,
        "--batch-size",
        str(batch),
        "--until-idle",
        "1",
    ]
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        first = drained = None
        cpu_first = cpu_drained = redis_first = redis_drained = 0.0
        while drained is None:
            info = _group(client, group)
            now = time.perf_counter()
            if info is not None:
                delivered = _text(info["last-delivered-id"])
                if first is None and delivered != "0-0":
                    first = now
                    cpu_first, redis_first = cpu_seconds([process.pid]), cpu_seconds([redis_pid])
                if delivered == last_id and int(info["pending"]) == 0:
                    drained = now
                    cpu_drained = cpu_seconds([process.pid])
                    redis_drained = cpu_seconds([redis_pid])
                    break
            if process.poll() is not None:
                raise SystemExit(
                    f"ingest consume exited ({process.returncode}) before draining the "
                    f"stream:\n{log.read_text(errors='replace')[-3000:]}"
                )
            if now - started > CLI_TIMEOUT:
                raise SystemExit(f"ingest consume did not drain the stream in {CLI_TIMEOUT} s")
            time.sleep(POLL)
        process.wait(120)
        exited = time.perf_counter()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    process_cpu = (children.ru_utime - children_before.ru_utime) + (
        children.ru_stime - children_before.ru_stime
    )
    output_text = log.read_text(errors="replace")
    said = re.search(r"(\d+) handled", output_text)
    if process.returncode != 0 or said is None:
        raise SystemExit(f"ingest consume failed ({process.returncode}):\n{output_text[-3000:]}")
    assert first is not None
    entries = int(client.xlen(STREAM))
    return Row(
        "",
        drained - first,
        entries,
        cpu_drained - cpu_first,
        redis_drained - redis_first,
        {
            "startup_s": first - started,
            "tail_s": exited - drained,
            "wall_s": exited - started,
            "end_to_end_rate": entries / (drained - started),
            "process_cpu_s": process_cpu,
            "reported_handled": int(said.group(1)),
        },
    )


# --- checks -------------------------------------------------------------------------


def check_jsonl(path: Path, expected: int) -> dict[str, Any]:
    """Lines, distinct article ids and entry ids of a sink file."""
    lines = 0
    article_ids: set[str] = set()
    entry_ids: set[str] = set()
    with path.open("rb") as fh:
        for raw in fh:
            lines += 1
            line = json.loads(raw)
            article_ids.add(line["article"]["id"])
            entry_ids.add(line["entry_id"])
    ok = lines == len(article_ids) == len(entry_ids) == expected
    return {
        "lines": lines,
        "article_ids": len(article_ids),
        "entry_ids": len(entry_ids),
        "bytes": path.stat().st_size,
        "ok": ok,
    }


def count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def filesystem(path: Path) -> str:
    """The type of the file system ``path`` is on (from /proc/self/mounts)."""
    best, kind = "", "?"
    target = str(path.resolve())
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return kind
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1]
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, kind = mount, parts[2]
    return kind


# --- main ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=100, help="entries per read")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--dir", type=Path, help="where the scratch folder goes (a real disk)")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument(
        "--profile", action="store_true", help="profile the in-process SDK + JsonlSink run"
    )
    args = parser.parse_args()
    # Stopped with SIGTERM too, the scratch Redis is stopped by the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # The in-process SDK logs its start and stop of each run: keep the output to figures.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    n, batch = args.articles, args.batch_size
    rng = random.Random(20260601)
    began = time.perf_counter()

    if args.corpus.is_file():
        texts, source = corpus_texts(args.corpus), f"corpus {args.corpus.parent.name}"
    else:
        texts, source = synthetic_texts(200, rng), "synthetic 600-word texts"

    rows: dict[str, Row] = {}
    checks: dict[str, dict[str, Any]] = {}
    profile = cProfile.Profile() if args.profile else None
    if args.dir:
        args.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-consume-", dir=args.dir) as scratch:
        root = Path(scratch)
        server = EmbeddedRedis(root / "redis", appendonly=False)
        server.start()
        client = redis.Redis.from_url(server.url)
        try:
            redis_pid = server.pid or 0
            version = client.info("server")["redis_version"]
            fill_start = time.perf_counter()
            entries, article_bytes = fill(client, articles(n, texts, rng))
            fill_s = time.perf_counter() - fill_start
            sample = client.xrange(STREAM, count=1)[0][1]
            memory = int(client.info("memory")["used_memory"])
            print(
                f"filled {STREAM}: {entries} articles from {source} in {fill_s:.1f} s, "
                f"article JSON {article_bytes / entries / 1024:.1f} KiB on average, "
                f"Redis {memory / 2**20:.0f} MiB; fields {sorted(_text(k) for k in sample)}",
                flush=True,
            )

            def measure(key: str, label: str, row: Row) -> None:
                row.measure = label
                rows[key] = row
                print(f"  {label}: {row.rate:,.0f}/s", flush=True)

            measure(
                "raw",
                "baseline: raw XREADGROUP + XACK loop",
                raw_loop(client, redis_pid, "raw", batch),
            )
            raw_file = root / "raw.jsonl"
            measure(
                "raw_file",
                "baseline: raw loop + append article JSON",
                raw_loop(client, redis_pid, "raw-file", batch, raw_file),
            )
            checks["raw_file"] = {"lines": count_lines(raw_file), "ok": None}
            checks["raw_file"]["ok"] = checks["raw_file"]["lines"] == n
            raw_file.unlink()
            lines_file = root / "raw-lines.jsonl"
            measure(
                "raw_lines",
                "raw loop + the sink's line format",
                raw_loop(client, redis_pid, "raw-lines", batch, lines_file, lines=True),
            )
            checks["raw_lines"] = check_jsonl(lines_file, n)
            lines_file.unlink()

            measure(
                "sdk_null",
                "SDK Consumer in-process, no-op handler",
                sdk_run(client, redis_pid, "sdk-null", batch, n, lambda entries: None),
            )
            for key, fsync, label in (
                ("sdk_nofsync", False, "SDK Consumer + JsonlSink fsync=off"),
                ("sdk_fsync", True, "SDK Consumer + JsonlSink fsync=batch"),
            ):
                path = root / f"{key}.jsonl"
                sink = JsonlSink(path, fsync=fsync)
                try:
                    row = sdk_run(
                        client,
                        redis_pid,
                        key.replace("_", "-"),
                        batch,
                        n,
                        sink.write,
                        profile if not fsync else None,
                    )
                finally:
                    sink.close()
                measure(key, label, row)
                checks[key] = check_jsonl(path, n)
                path.unlink()

            env = {k: v for k, v in os.environ.items() if not k.startswith(("INGEST_", "LOG_"))}
            env.update(REDIS_URL=server.url, LOG_FORMAT="json", INGEST_DATA_DIR=str(root / "var"))
            for key, query, label in (
                ("cli_fsync", "", "ingest consume, jsonl fsync=batch"),
                ("cli_nofsync", "?fsync=off", "ingest consume, jsonl fsync=off"),
            ):
                path = root / f"{key}.jsonl"
                row = cli_run(
                    client,
                    redis_pid,
                    env,
                    "bench" if key == "cli_fsync" else "bench-nofsync",
                    f"jsonl:{path}{query}",
                    batch,
                    root / f"{key}.log",
                )
                measure(key, label, row)
                checks[key] = check_jsonl(path, n)
                checks[key]["reported_handled"] = row.extra["reported_handled"]
                checks[key]["ok"] = checks[key]["ok"] and row.extra["reported_handled"] == n
                path.unlink()
            sink_fs = filesystem(root)
        finally:
            client.close()
            server.stop()

    raw = rows["raw"].rate
    print(
        f"\nconsume benchmark: {n} articles ({article_bytes / n / 1024:.1f} KiB article JSON "
        f"each), batch {batch}, {os.cpu_count()} cores, redis-server {version} (no "
        f"persistence), sink files on {sink_fs}"
    )
    header = f"{'measure':<44} {'articles/s':>10} {'vs raw loop':>11} {'CPU ms/art':>10}"
    print(f"{header} {'Redis ms/art':>12}")
    for row in rows.values():
        cpu = f"{row.cpu / row.articles * 1000:.3f}" if row.cpu is not None else ""
        print(
            f"{row.measure:<44} {row.rate:>10,.0f} {row.rate / raw:>11.2f} {cpu:>10} "
            f"{row.redis_cpu / row.articles * 1000:>12.3f}"
        )
    print(
        "(CPU: the consumer's — this process, or the CLI process during consumption; "
        "Redis: redis-server's)"
    )
    for key in ("cli_fsync", "cli_nofsync"):
        extra = rows[key].extra
        print(
            f"{rows[key].measure}: start-up to first delivery {extra['startup_s']:.2f} s, "
            f"consumption {rows[key].seconds:.2f} s, drained to exit {extra['tail_s']:.2f} s "
            f"(--until-idle 1), wall {extra['wall_s']:.2f} s; from process start to drained "
            f"{extra['end_to_end_rate']:,.0f}/s; process CPU {extra['process_cpu_s']:.2f} s"
        )
    for key, check in checks.items():
        detail = ", ".join(f"{k} {v}" for k, v in check.items() if k not in ("ok",))
        print(f"check {key}: {'OK' if check['ok'] else 'FAILED'} ({detail}; expected {n})")
    total_s = time.perf_counter() - began
    print(f"run time {total_s:.0f} s (filling {fill_s:.0f} s)")

    if profile is not None:
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(18)
        print("\nprofile of the SDK + JsonlSink fsync=off run, by own time:")
        print(text.getvalue())

    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "articles": n,
                    "batch_size": batch,
                    "article_json_bytes_mean": article_bytes / n,
                    "source": source,
                    "cores": os.cpu_count(),
                    "redis_version": version,
                    "sink_filesystem": sink_fs,
                    "fill_s": fill_s,
                    "run_s": total_s,
                    "rows": {
                        k: {**asdict(r), "rate": r.rate, "vs_raw": r.rate / raw}
                        for k, r in rows.items()
                    },
                    "checks": checks,
                },
                indent=2,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()

"""Feed polling throughput, beside the raw request rate of the same HTTP server.

Starts its own Redis and HTTP server (tests/feedserver.py, in a process of its own) and
a real `ingest worker`, registers N feeds as if each had been polled before (validators
stored), and makes them all due. 90 % of them answer 304; 10 % carry 1–3 new entries.
Then, in the same run:

* baseline: conditional GETs per second against the same server with a plain httpx
  loop (one client, no Celery, no Redis), sequential and with 8 threads;
* feeds polled per second through the real path (scheduler tick → due-set claim with
  leases → poll tasks → conditional fetch → parse → new-entry detection → lease
  completion), and new entries per second reaching ``ingest:articles``.

All feeds are on one host (127.0.0.1), so the per-host limits are lifted for the run.

    .venv/bin/python bench/poll.py [--feeds 2000] [--changed 0.1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import redis
from celery import Celery

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stack import cpu_seconds, start_worker, stop_worker, worker_pids  # noqa: E402
from pipelines.feedstore import DUE, FEED_PREFIX, LEASES, add_feed, iso  # noqa: E402
from worker.embedded_redis import EmbeddedRedis  # noqa: E402

WORKER_ENV = {
    "INGEST_ALLOW_PRIVATE_NETWORKS": "true",
    "INGEST_HOST_MAX_CONCURRENCY": "1000",
    "INGEST_HOST_MAX_PER_MINUTE": "10000000",
    "INGEST_POLL_MAX_IN_FLIGHT": "100000",
    "LOG_LEVEL": "WARNING",
}


def rss(feed: int, entries: int, *, new: bool) -> bytes:
    items = "".join(
        f"<item><guid>f{feed}-e{n}{'-new' if new else ''}</guid><title>Feed {feed} story {n}"
        f"</title><link>https://site{feed}.example/{n}</link>"
        f"<pubDate>Mon, 0{n + 1} Jun 2026 10:00:00 GMT</pubDate><description><![CDATA[<p>"
        + f"Story {n} of feed {feed}, a paragraph with some words in it. " * 12
        + "</p>]]></description></item>"
        for n in range(entries)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Feed {feed}'
        f"</title><link>https://site{feed}.example/</link>{items}</channel></rss>"
    ).encode()


def serve(spec_path: Path, port_file: Path) -> None:
    """--serve: run the HTTP server with the routes in ``spec_path`` until killed."""
    from tests.feedserver import FeedServer, Route

    server = FeedServer()
    for path, route in json.loads(spec_path.read_text()).items():
        server.route(
            path,
            Route(
                body=route["body"].encode(),
                etag=route["etag"],
                headers={"Content-Type": "application/rss+xml"},
            ),
        )
    server.requests = _Discard()  # type: ignore[assignment]  # no unbounded request log
    port_file.write_text(str(server.port))
    while True:
        time.sleep(3600)


class _Discard(list):  # type: ignore[type-arg]
    def append(self, _: object) -> None:
        pass


def measure_raw(base: str, paths: list[str], etags: dict[str, str], threads: int) -> float:
    with httpx.Client(limits=httpx.Limits(max_connections=threads)) as client:

        def get(path: str) -> int:
            return client.get(base + path, headers={"If-None-Match": etags[path]}).status_code

        start = time.perf_counter()
        if threads == 1:
            statuses = [get(p) for p in paths]
        else:
            with ThreadPoolExecutor(threads) as pool:
                statuses = list(pool.map(get, paths))
        elapsed = time.perf_counter() - start
    assert statuses.count(304) >= len(paths) * 0.8, "the server should mostly answer 304"
    return len(paths) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--changed", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--batch", type=int, default=25, help="feeds per poll task")
    parser.add_argument("--threads", type=int, default=8, help="fetch threads per poll task")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port_file)
        return

    rng = random.Random(7)
    changed = set(rng.sample(range(args.feeds), int(args.feeds * args.changed)))
    new_entries = {i: rng.randint(1, 3) for i in changed}
    routes, stored_etag = {}, {}
    for i in range(args.feeds):
        # Every feed was polled before with ETag "v1"; a changed one now serves "v2".
        routes[f"/feed/{i}.xml"] = {
            "body": rss(i, new_entries.get(i, 3), new=i in changed).decode(),
            "etag": '"v2"' if i in changed else '"v1"',
        }
        stored_etag[f"/feed/{i}.xml"] = '"v1"'

    with tempfile.TemporaryDirectory(prefix="bench-poll-") as scratch:
        root = Path(scratch)
        spec, port_file = root / "routes.json", root / "port"
        spec.write_text(json.dumps(routes))
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(spec), "--port-file", str(port_file)],
            cwd=REPO,
        )
        redis_server = EmbeddedRedis(root / "redis")
        redis_server.start()
        worker = None
        try:
            while not port_file.exists():
                time.sleep(0.05)
            base = f"http://127.0.0.1:{port_file.read_text()}"
            paths = list(routes)
            raw_1 = measure_raw(base, paths, stored_etag, threads=1)
            raw_8 = measure_raw(base, paths, stored_etag, threads=8)

            client = redis.Redis.from_url(redis_server.url)
            now = datetime.now(UTC)
            for path in paths:
                state, _ = add_feed(client, base + path, now=now)
                client.hset(
                    FEED_PREFIX + state.id,
                    mapping={
                        "etag": stored_etag[path],
                        "last_full_fetch_at": iso(now),
                        "status": "ok",
                        "body_hash": "0" * 32,
                    },
                )
            worker = start_worker(
                redis_server.url,
                root,
                concurrency=args.concurrency,
                env={
                    **WORKER_ENV,
                    "INGEST_POLL_BATCH_SIZE": str(args.batch),
                    "INGEST_POLL_THREADS": str(args.threads),
                },
            )
            app = Celery(broker=redis_server.url)
            expected_entries = sum(new_entries.values())
            client.zadd(DUE, {fid.decode(): 0 for fid in client.zrange(DUE, 0, -1)})
            pids = [*worker_pids(worker.pid), server.pid, redis_server.pid or 0]
            cpu_before = [cpu_seconds([pid]) for pid in pids]
            start = time.perf_counter()
            app.send_task("scheduler.tick", queue="scheduler")
            polled_at = None
            while True:
                due_now = client.zcount(DUE, "-inf", time.time())
                if polled_at is None and due_now == 0 and client.zcard(LEASES) == 0:
                    polled_at = time.perf_counter()
                if polled_at and client.xlen("ingest:articles") >= expected_entries:
                    break
                if time.perf_counter() - start > 600:
                    raise SystemExit("the polls did not finish in 10 minutes")
                time.sleep(0.02)
            entries_at = time.perf_counter()
            cpu = [
                cpu_seconds([pid]) - before for pid, before in zip(pids, cpu_before, strict=True)
            ]
            worker_cpu, server_cpu, redis_cpu = sum(cpu[:-2]), cpu[-2], cpu[-1]
            failing = sum(
                1
                for fid in client.zrange(DUE, 0, -1)
                if client.hget(FEED_PREFIX + fid.decode(), "status") != b"ok"
            )
        finally:
            if worker is not None:
                stop_worker(worker)
            server.kill()
            server.wait()
            redis_server.stop()

    feeds_rate = args.feeds / (polled_at - start)
    print(
        f"\npoll benchmark: {args.feeds} feeds on one local server, {len(changed)} changed "
        f"({expected_entries} new entries), {os.cpu_count()} cores, worker concurrency "
        f"{args.concurrency}"
    )
    print(f"{'measure':<52} {'rate/s':>9} {'vs raw 8 threads':>17}")
    print(
        f"{'baseline: raw conditional GETs, httpx, 1 thread':<52} {raw_1:>9.0f} "
        f"{raw_1 / raw_8:>17.2f}"
    )
    print(f"{'baseline: raw conditional GETs, httpx, 8 threads':<52} {raw_8:>9.0f} {1:>17.2f}")
    print(
        f"{'feeds polled (tick → claim → poll → complete)':<52} {feeds_rate:>9.0f} "
        f"{feeds_rate / raw_8:>17.2f}"
    )
    entries_rate = expected_entries / (entries_at - start)
    print(f"{'new entries on ingest:articles (from the tick)':<52} {entries_rate:>9.0f}")
    print(f"feeds not ok after the run: {failing}")
    print(
        f"CPU during the run, ms per feed: worker {worker_cpu / args.feeds * 1000:.2f}, "
        f"HTTP server {server_cpu / args.feeds * 1000:.2f}, "
        f"Redis {redis_cpu / args.feeds * 1000:.2f} (batch {args.batch}, {args.threads} threads)"
    )


if __name__ == "__main__":
    main()

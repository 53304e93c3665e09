"""End-to-end replay throughput, beside Celery's own per-task ceiling.

Starts its own Redis (the embedded default's binary and persistence: AOF everysec) and a
real `ingest worker` on free ports, then in the same run measures:

* baseline: Celery no-op tasks per second (``ingest.noop``) against that Redis;
* articles per second through ``ingest replay`` (read files → queue → parse → clean →
  dedup → publish on ``ingest:articles``), with one document per task and with batches.

The documents are synthetic seed-like files made by recombining the seed's sentences
(and its boilerplate trailer), all distinct, so every one is published.

    .venv/bin/python bench/replay.py [--docs 5000] [--noop 3000] [--batch 1 --batch 25]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.stack import cpu_seconds, start_worker, stop_worker, worker_pids  # noqa: E402
from config.settings import load_settings  # noqa: E402
from pipelines.text import content_hash  # noqa: E402
from worker.embedded_redis import EmbeddedRedis  # noqa: E402

SEED = REPO / "seeds" / "000_8a58323627501f48.txt"
TRAILER = (
    "Tyler Durden\n\nMon, 02/03/2020 – 20:25\n\nGo to Source\nAuthor: Tyler Durden\n\n"
    "0 0 votes\nArticle Rating\n\n\nInline Feedbacks\nView all comments\n"
)


def seed_sentences() -> list[str]:
    body = SEED.read_text(encoding="utf-8").split("\n\n")[2:-6]
    sentences = []
    for paragraph in body:
        sentences += [s.strip() for s in re.split(r"(?<=[.:”])\s+", paragraph) if len(s) > 30]
    return sentences


def make_documents(folder: Path, count: int, rng: random.Random, seen: set[str]) -> None:
    """``count`` documents in ``folder``, none with a text hash already in ``seen``."""
    folder.mkdir(parents=True)
    sentences = seed_sentences()
    words = " ".join(sentences).split()
    made = 0
    while made < count:
        picked = rng.sample(sentences, k=rng.randint(8, 16))
        paragraphs = [" ".join(picked[i : i + 3]) for i in range(0, len(picked), 3)]
        text = "\n\n".join(paragraphs)
        digest = content_hash(text)
        if digest in seen:
            continue
        seen.add(digest)
        title = " ".join(rng.sample(words, k=8)).strip(",.")
        (folder / f"doc{made:06}.txt").write_text(
            f"{title}\n\n{title}\n\n{text}\n\n{TRAILER}", encoding="utf-8"
        )
        made += 1


def measure_stages(folder: Path) -> float:
    """Documents per CPU second through parse → clean → build alone, in this process:
    the pipeline's own ceiling on one core, without Celery or Redis."""
    from zoneinfo import ZoneInfo

    from pipelines.process import process_document
    from pipelines.rules import rules_from_dir
    from pipelines.seeds import load_seed_files

    rules = rules_from_dir(load_settings().boilerplate_dir)
    documents = [doc for loaded in load_seed_files([folder]) for doc in loaded.documents]
    zone = ZoneInfo("UTC")
    start = time.process_time()
    for document in documents:
        process_document(document, rules, default_tz=zone)
    return len(documents) / (time.process_time() - start)


def measure_noop(client: redis.Redis, count: int) -> float:
    from worker.tasks import noop

    key = f"bench:noop:{time.time_ns()}"
    start = time.perf_counter()
    for _ in range(count):
        noop.apply_async(kwargs={"counter_key": key})
    while int(client.get(key) or 0) < count:
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    client.delete(key)
    return count / elapsed


def measure_replay(client: redis.Redis, folder: Path, batch: int, total: int) -> float:
    """Articles per second, from reading the files to every outcome recorded. The
    documents are new to the dedup keys, so every stage runs (no --force)."""
    from worker.replay import send_replay, wait_for_run

    settings = load_settings()
    start = time.perf_counter()
    sent = send_replay(client, [folder], settings, batch_size=batch)
    if not wait_for_run(client, sent.run_id, total, timeout=1800, poll=0.02):
        raise SystemExit(f"replay with batch {batch} did not finish")
    elapsed = time.perf_counter() - start
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--noop", type=int, default=3000)
    parser.add_argument("--batch", type=int, action="append", help="documents per task")
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    batches = args.batch or [1, 25]

    with tempfile.TemporaryDirectory(prefix="bench-replay-") as scratch:
        root = Path(scratch)
        # One distinct set of documents per measured run: each run goes through dedup.
        rng, seen = random.Random(20200203), set[str]()
        sets = [root / f"docs-{batch}" for batch in batches]
        for folder in sets:
            make_documents(folder, args.docs, rng, seen)
        server = EmbeddedRedis(root / "redis")
        server.start()
        os.environ.update(REDIS_URL=server.url, INGEST_DATA_DIR=str(root / "var"))
        worker = start_worker(server.url, root, concurrency=args.concurrency)
        client = redis.Redis.from_url(server.url)
        try:
            measure_noop(client, 200)  # warm-up: connections, pool processes
            noop_rate = measure_noop(client, args.noop)
            rows = []
            for batch, folder in zip(batches, sets, strict=True):
                pids = worker_pids(worker.pid)
                cpu_before = cpu_seconds(pids)
                rate = measure_replay(client, folder, batch, args.docs)
                cpu = cpu_seconds(pids) - cpu_before
                rows.append((batch, rate, cpu / args.docs * 1000))
            published = client.xlen("ingest:articles")
            stages_rate = measure_stages(sets[0])
        finally:
            client.close()
            stop_worker(worker)
            server.stop()

    print(
        f"\nreplay benchmark: {args.docs} distinct documents, {os.cpu_count()} cores, "
        f"worker concurrency {args.concurrency}, Redis AOF everysec"
    )
    print(f"{'measure':<40} {'rate/s':>10} {'vs no-op':>9} {'worker CPU ms/doc':>18}")
    print(f"{'baseline: Celery no-op tasks':<40} {noop_rate:>10.0f} {'1.00':>9} {'':>18}")
    for batch, rate, cpu_ms in rows:
        label = f"articles end to end, {batch} doc/task"
        print(f"{label:<40} {rate:>10.0f} {rate / noop_rate:>9.2f} {cpu_ms:>18.3f}")
    label = "stages alone in-process, per CPU second"
    print(f"{label:<40} {stages_rate:>10.0f} {'':>9} {1000 / stages_rate:>18.3f}")
    print(f"published entries: {published} (expected {args.docs * len(batches)})")


if __name__ == "__main__":
    main()

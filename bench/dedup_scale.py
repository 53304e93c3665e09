"""Dedup at scale: Redis bytes per article and the dedup stage's docs/s, beside a plain SET NX.

Writes N synthetic articles through the real dedup stage (:func:`pipelines.dedup.claim`:
match form, MinHash signature, bands, and the one Lua call per article, pipelined 25 to a
round trip as a task does) into a scratch Redis this script starts (no persistence, stopped
by process id at the end), then reports:

* Redis memory per article (``used_memory`` growth / N) at each size asked for (default
  100k and 1M; the index is filled once and measured on the way), with a breakdown by key
  family and the hashes' encoding (ziplist/listpack is the compact one);
* at each size, docs/s of the dedup stage on one core (this process; Redis runs in its
  own) over fresh articles against that index, the fingerprints' own rate, the script's
  time in Redis per document, and the rate of a plain ``SET NX`` per document (pipelined
  25 the same way) on the same Redis right after — the floor any Redis-backed dedup pays.

Articles are 150–600 words drawn from a 20,000-word vocabulary with Zipf-like frequencies
(distinct texts, like distinct news articles; every 20th is a near-duplicate repost of an
earlier one, so the near layer's confirm path is exercised too), each with a guid, a
canonical URL and every fourth with an ``original_url``.

Run from the repository root::

    .venv/bin/python bench/dedup_scale.py                      # 100k and 1M (~10 minutes)
    .venv/bin/python bench/dedup_scale.py --sizes 20000        # a quick look
"""

from __future__ import annotations

import argparse
import itertools
import random
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipelines.article import Article, article_id  # noqa: E402
from pipelines.dedup import NearOptions, claim  # noqa: E402
from pipelines.neardup import fingerprint  # noqa: E402
from pipelines.text import content_hash  # noqa: E402
from pipelines.urls import alias_form  # noqa: E402
from worker.embedded_redis import EmbeddedRedis  # noqa: E402

BATCH = 25  # documents per task (replay_batch_size)
TTL = 14 * 86400
VOCABULARY = 20_000
SEED = 7


def vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    """Words and their cumulative Zipf weights."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = {
        "".join(rng.choice(letters) for _ in range(rng.randint(2, 10)))
        for _ in range(VOCABULARY * 2)
    }
    ordered = sorted(words)[:VOCABULARY]
    rng.shuffle(ordered)
    return ordered, list(itertools.accumulate(1 / (rank + 1) for rank in range(len(ordered))))


def articles(n: int, rng: random.Random) -> Iterator[Article]:
    """N articles; every 20th repeats an earlier text with a closing paragraph added."""
    words, cumulative = vocabulary(rng)
    fetched = datetime.now(UTC)
    recent: list[str] = []
    for i in range(n):
        if i % 20 == 19 and recent:
            note = " ".join(rng.choices(words, cum_weights=cumulative, k=40))
            text = rng.choice(recent) + "\n\n" + note
        else:
            paragraphs = [
                " ".join(rng.choices(words, cum_weights=cumulative, k=rng.randint(30, 120)))
                for _ in range(rng.randint(3, 6))
            ]
            text = "\n\n".join(paragraphs)
            recent = [*recent[-99:], text]
        url = f"https://site{i % 500}.example/news/{i}"
        digest = content_hash(text)
        ident = article_id(alias_form(url), digest)
        yield Article.model_construct(
            id=ident,
            story_id=ident,
            url=url,
            canonical_url=url,
            original_url=f"https://source.example/{i // 4}" if i % 4 == 0 else None,
            feed_url=f"https://site{i % 500}.example/feed",
            guid=f"post-{i}",
            title="t",
            text=text,
            html="",
            word_count=len(text.split()),
            content_hash=digest,
            fetched_at=fetched,
            source_kind="feed",
        )


def fingerprinted(batch: list[Article]) -> list[Article]:
    """The batch with fingerprints, as the process stage makes them (timed with dedup)."""
    out = []
    for article in batch:
        fp = fingerprint(article.text)
        packed = fp.packed().hex() if fp else None
        out.append(article.model_copy(update={"fingerprint": packed}))
    return out


def batches(items: Iterator[Article], size: int) -> Iterator[list[Article]]:
    batch: list[Article] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def family_usage(client: redis.Redis, pattern: str, sample: int = 2000) -> tuple[int, float, str]:
    """(keys, estimated bytes, encoding of a sample key) of one key family; MEMORY USAGE of
    up to ``sample`` keys, scaled to the family's count."""
    keys = list(client.scan_iter(match=pattern, count=10_000))
    if not keys:
        return 0, 0.0, "—"
    picked = random.Random(1).sample(keys, min(sample, len(keys)))
    sizes = [client.memory_usage(key, samples=0) or 0 for key in picked]
    encoding = client.object("encoding", picked[0])
    name = encoding.decode() if isinstance(encoding, bytes) else str(encoding)
    return len(keys), statistics.fmean(sizes) * len(keys), name


def report_memory(client: redis.Redis, n: int, baseline: int) -> None:
    grown = used_memory(client) - baseline
    print(f"\n{n:,} articles: Redis used_memory grew {grown / 2**20:,.1f} MiB")
    print(f"  bytes per article: {grown / n:,.0f}   (heading for ≤ 1,024)")
    for label, pattern in (
        ("records (ingest:sig:*)", "ingest:sig:*"),
        ("exact-key hashes (ingest:dedup:*)", "ingest:dedup:*"),
        ("band hashes (ingest:lsh:*)", "ingest:lsh:*"),
    ):
        count, size, encoding = family_usage(client, pattern)
        print(f"  {label:<36} {count:>9,} keys  {size / n:>6,.0f} B/article  [{encoding}]")


def set_nx_rate(client: redis.Redis, n: int, prefix: str) -> float:
    """Docs/s of one SET NX EX per document, pipelined BATCH to a round trip; the keys are
    deleted afterwards."""
    started = time.perf_counter()
    for start in range(0, n, BATCH):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(n, start + BATCH)):
            pipe.set(f"{prefix}{i:032x}", "0123456789abcdef", nx=True, ex=TTL)
        pipe.execute()
    rate = n / (time.perf_counter() - started)
    for start in range(0, n, 1000):
        client.delete(*(f"{prefix}{i:032x}" for i in range(start, min(n, start + 1000))))
    return rate


def eval_usec(client: redis.Redis) -> float:
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return float(stats.get("usec_per_call", 0.0))


def measure_speed(client: redis.Redis, near: NearOptions, docs: int, seed: int) -> None:
    """The dedup stage's docs/s on fresh articles against the index as it is, and the plain
    SET NX floor right after, on the same server."""
    sample = list(articles(docs, random.Random(seed)))
    started = time.perf_counter()
    for article in sample:
        fingerprint(article.text)
    fingerprint_rate = len(sample) / (time.perf_counter() - started)
    client.config_resetstat()
    started = time.perf_counter()
    duplicates = 0
    for batch in batches(iter(sample), BATCH):
        verdicts = claim(client, fingerprinted(batch), ttl=TTL, near=near)
        duplicates += sum(v.is_duplicate for v in verdicts)
    rate = len(sample) / (time.perf_counter() - started)
    script_usec = eval_usec(client)
    floor = set_nx_rate(client, len(sample), prefix=f"bench:setnx:{seed}:")
    print(f"  speed over {len(sample):,} new documents, one core, {BATCH} per round trip:")
    print(f"    dedup stage (fingerprint + claim)  {rate:>9,.0f} docs/s")
    print(f"    plain SET NX (baseline)            {floor:>9,.0f} docs/s")
    print(f"    ratio                              {rate / floor:>9.3f}")
    print(f"    fingerprints alone                 {fingerprint_rate:>9,.0f} docs/s")
    print(f"    the dedup script in Redis          {script_usec:>9,.0f} µs per document")
    print(f"    reposts found: {duplicates} of {len(sample) // 20} planted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[100_000, 1_000_000],
        help="article counts to report at (ascending; the index is filled once)",
    )
    parser.add_argument(
        "--rate-docs", type=int, default=10_000, help="documents timed for the docs/s figures"
    )
    parser.add_argument(
        "--buckets",
        type=int,
        default=NearOptions().index_buckets,
        help="index hashes per family (INGEST_DEDUP_INDEX_BUCKETS)",
    )
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    # Stopped with SIGTERM too, the scratch Redis is stopped by the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    near = NearOptions(index_buckets=args.buckets)

    with tempfile.TemporaryDirectory(prefix="bench-dedup-scale-") as scratch:
        server = EmbeddedRedis(Path(scratch) / "redis", appendonly=False)
        server.start()
        client = redis.Redis(host="127.0.0.1", port=server.port)
        try:
            version = client.info("server")["redis_version"]
            print(f"redis-server {version} (scratch, pid {server.pid})")
            print(f"near layer: {near}")
            baseline = used_memory(client)
            written = 0
            started = time.perf_counter()
            stream = batches(articles(sizes[-1], random.Random(SEED)), BATCH)
            for size in sizes:
                while written < size:
                    batch = next(stream)
                    claim(client, fingerprinted(batch), ttl=TTL, near=near)
                    written += len(batch)
                report_memory(client, written, baseline)
                measure_speed(client, near, args.rate_docs, seed=size)
                written += args.rate_docs  # the timed articles joined the index too
            print(f"\nrun time {time.perf_counter() - started:,.0f} s")
        finally:
            client.close()
            server.stop()


if __name__ == "__main__":
    main()

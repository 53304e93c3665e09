"""The Redis-backed stages against a real server: atomic dedup claims, idempotent
appends, key expiry, and a redelivered task publishing once."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime

import pytest
import redis

from pipelines.article import Article, article_id
from pipelines.dedup import Verdict, claim_exact, exact_keys
from pipelines.documents import load_file
from pipelines.publish import Append, append_once
from pipelines.text import content_hash
from tests.conftest import WorkerProcess
from tests.helpers import SEED, wait_for
from worker.embedded_redis import EmbeddedRedis

pytestmark = pytest.mark.integration


def make_article(text: str, url: str | None) -> Article:
    digest = content_hash(text)
    ident = article_id(url, digest)
    return Article(
        id=ident,
        story_id=ident,
        url=url,
        canonical_url=url,
        title="T",
        text=text,
        html=f"<p>{text}</p>",
        word_count=len(text.split()),
        content_hash=digest,
        fetched_at=datetime.now(UTC),
        source_kind="seed",
    )


def race(url: str, copies: list[Article]) -> list[Verdict]:
    """Claim each copy from its own connection and thread, released at the same instant."""
    clients = [redis.Redis.from_url(url) for _ in copies]
    barrier = threading.Barrier(len(copies))
    results: list[Verdict | None] = [None] * len(copies)

    def claim(i: int) -> None:
        barrier.wait()
        results[i] = claim_exact(clients[i], [copies[i]], ttl=60)[0]

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(copies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def test_two_workers_claiming_copies_at_once_agree_on_one_owner(
    redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    for n in range(100):
        text = f"story number {n} told the same way twice"
        copies = [make_article(text, f"https://site{i}.example/{n}") for i in range(2)]
        verdicts = race(redis_server.url, copies)
        assert len({v.owner_id for v in verdicts}) == 1, n
        (duplicate,) = [v for v in verdicts if v.is_duplicate]
        assert duplicate.matched is not None and duplicate.matched.layer == "text"


def test_dedup_keys_expire_after_the_horizon(redis_client: redis.Redis) -> None:
    article = make_article("a text that expires", "https://example.org/x")
    claim_exact(redis_client, [article], ttl=120)
    for key in exact_keys(article):
        assert 0 < redis_client.ttl(key.key) <= 120
    # The same article again is not a duplicate of itself.
    (again,) = claim_exact(redis_client, [article], ttl=120)
    assert not again.is_duplicate


def test_a_duplicate_url_becomes_an_alias_of_the_owner(redis_client: redis.Redis) -> None:
    first = make_article("the original text", "https://a.example/1")
    repost = make_article("the original text", "https://b.example/2")
    claim_exact(redis_client, [first], ttl=60)
    (verdict,) = claim_exact(redis_client, [repost], ttl=60)
    assert verdict.owner_id == first.id
    # Later, another text at the repost's address belongs to the same story.
    later = make_article("an updated text", "https://b.example/2")
    (verdict,) = claim_exact(redis_client, [later], ttl=60)
    assert verdict.owner_id == first.id and verdict.matched.layer == "url"  # type: ignore[union-attr]


def test_append_once_adds_one_entry_per_key(redis_client: redis.Redis) -> None:
    item = Append("ingest:test", "k1", {"a": "1"})
    first = append_once(redis_client, [item], ttl=60)[0]
    second = append_once(redis_client, [item], ttl=60)[0]
    assert first.created and not second.created
    assert first.entry_id == second.entry_id
    assert redis_client.xlen("ingest:test") == 1


def test_a_redelivered_task_publishes_once(
    redis_client: redis.Redis, celery_worker: WorkerProcess, service_env
) -> None:
    """A task delivered twice (as after a crash between XADD and its acknowledgement)
    adds one stream entry: the second delivery finds the article's marker."""
    from celery import Celery

    app = Celery(broker=service_env["REDIS_URL"])
    app.conf.task_routes = {"ingest.*": {"queue": "ingest"}}
    message = load_file(SEED).to_message()
    task_id = str(uuid.uuid4())
    for _ in range(2):
        app.send_task(
            "ingest.documents",
            args=[[message]],
            kwargs={"run_id": "redelivery"},
            task_id=task_id,
            queue="ingest",
        )
    wait_for(
        lambda: (
            "document.duplicate" in celery_worker.log_text() and task_id in celery_worker.log_text()
        ),
        timeout=30,
        what="the second delivery",
    )
    assert redis_client.xlen("ingest:articles") == 1
    outcome = json.loads(next(iter(redis_client.hvals("ingest:run:redelivery"))))
    assert outcome["status"] == "duplicate" and "already published" in outcome["reason"]

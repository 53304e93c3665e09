"""End to end on real parts: `ingest replay` → Celery queue → a real worker → Redis
streams, read back as downstream would."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.expectations import SEED_TITLE, assert_seed_article, validate_article
from tests.helpers import (
    REPO,
    SEED,
    SEEDS,
    WorkerProcess,
    clean_env,
    run_cli,
    start_worker,
    stop_process,
)
from worker.embedded_redis import EmbeddedRedis

pytestmark = pytest.mark.integration

ARTICLES = "ingest:articles"


def stream_articles(client: redis.Redis, stream: str = ARTICLES) -> list[dict[str, Any]]:
    return [json.loads(fields[b"article"]) for _, fields in client.xrange(stream)]


def stream_records(client: redis.Redis, stream: str) -> list[dict[str, Any]]:
    return [json.loads(fields[b"record"]) for _, fields in client.xrange(stream)]


def replay(env: dict[str, str], *args: str) -> Any:
    result = run_cli("replay", *args, "--wait", "--timeout", "60", env=env)
    return result


@pytest.fixture
def env(service_env: dict[str, str], redis_client: redis.Redis, celery_worker: WorkerProcess):
    return service_env


def test_seed_replay_publishes_the_clean_article(env: dict[str, str], redis_client: redis.Redis):
    result = replay(env, str(SEEDS))
    assert result.returncode == 0, result.stderr
    assert "published" in result.stdout
    articles = stream_articles(redis_client)
    assert len(articles) == 1
    assert_seed_article(articles[0])
    _, fields = redis_client.xrange(ARTICLES)[0]
    assert fields[b"id"].decode() == articles[0]["id"]
    assert fields[b"schema_version"] == b"1"


def test_replaying_again_publishes_nothing_new_unless_forced(
    env: dict[str, str], redis_client: redis.Redis
) -> None:
    assert replay(env, str(SEED)).returncode == 0
    again = replay(env, str(SEED))
    assert again.returncode == 0, again.stderr
    assert "already published" in again.stdout
    assert len(stream_articles(redis_client)) == 1

    forced = replay(env, str(SEED), "--force")
    assert forced.returncode == 0, forced.stderr
    articles = stream_articles(redis_client)
    assert len(articles) == 2 and articles[0]["id"] == articles[1]["id"]


def test_a_repost_with_the_same_text_is_a_duplicate_with_evidence(
    env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    # The same story as an HTML page at its own address: other markup, same words.
    seed_text = SEED.read_text(encoding="utf-8")
    title, _, body = seed_text.partition("\n")
    paragraphs = [p for p in body.split("\n\n") if p.strip()][1:15]
    page = tmp_path / "repost.html"
    page.write_text(
        f"<html><head><title>{title}</title>"
        '<link rel="canonical" href="https://aggregator.example/story?id=7"></head>'
        "<body><article>"
        + "".join(f"<p>{p}</p>" for p in paragraphs)
        + "<p>Go to Source</p></article></body></html>",
        encoding="utf-8",
    )
    assert replay(env, str(SEED)).returncode == 0
    result = replay(env, str(page))
    assert result.returncode == 0, result.stderr
    assert len(stream_articles(redis_client)) == 1
    (duplicate,) = stream_records(redis_client, "ingest:duplicates")
    original = stream_articles(redis_client)[0]
    assert duplicate["duplicate_of"] == original["id"]
    assert duplicate["layer"] == "text"
    assert duplicate["evidence"]["content_hash"] == original["content_hash"]
    assert duplicate["evidence"]["source_ref"] == str(page)
    assert duplicate["evidence"]["canonical_url"] == "https://aggregator.example/story?id=7"
    assert duplicate["id"] != original["id"]


def test_an_edited_repost_is_one_story_and_tail_shows_the_evidence(
    env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    """The seed republished with an editor's note and without its last paragraphs: not
    the same text, the same story. `ingest tail --stream duplicates` says why; a forced
    replay publishes it all the same."""
    seed_text = SEED.read_text(encoding="utf-8")
    title, _, body = seed_text.partition("\n")
    paragraphs = [p for p in body.split("\n\n") if p.strip()][1:12]
    note = (
        "Editor's note: this report is republished from our partners with permission "
        "and has been shortened for length; the full version is on their site."
    )
    page = tmp_path / "edited.html"
    page.write_text(
        f"<html><head><title>{title}</title>"
        '<link rel="canonical" href="https://partner.example/iran/commander?utm_source=x">'
        "</head><body><article><p>"
        + note
        + "</p>"
        + "".join(f"<p>{p}</p>" for p in paragraphs)
        + "</article></body></html>",
        encoding="utf-8",
    )
    assert replay(env, str(SEED)).returncode == 0
    assert replay(env, str(page)).returncode == 0
    (original,) = stream_articles(redis_client)
    (record,) = stream_records(redis_client, "ingest:duplicates")
    assert record["duplicate_of"] == record["story_id"] == original["id"]
    assert record["layer"] == "near" and record["similarity"] >= 0.5
    assert record["evidence"]["canonical_url"] == "https://partner.example/iran/commander"

    raw = run_cli("tail", "--stream", "duplicates", "--json", env=env)
    assert raw.returncode == 0, raw.stderr
    assert json.loads(raw.stdout.splitlines()[-1]) == record
    human = run_cli("tail", "--stream", "duplicates", env=env)
    assert f"is a duplicate of {original['id']} by near (Jaccard" in " ".join(human.stdout.split())

    forced = replay(env, str(page), "--force")
    assert forced.returncode == 0, forced.stderr
    articles = stream_articles(redis_client)
    assert len(articles) == 2 and articles[1]["story_id"] == articles[1]["id"]


def test_bad_documents_fail_visibly_and_the_rest_go_through(
    env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    (tmp_path / "good.txt").write_text("A good title\n\nA real paragraph of text.\n")
    (tmp_path / "only-boilerplate.txt").write_text("Title\n\nGo to Source\nView all comments\n")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02PNG")
    (tmp_path / "latin1.txt").write_bytes(
        "Caf\xe9 title\n\nCr\xe8me br\xfbl\xe9e.\n".encode("latin-1")
    )
    (tmp_path / "notes.md").write_text("ignored: not a seed type")
    result = replay(env, str(tmp_path))
    assert result.returncode == 1  # something failed
    assert "no article text left" in result.stdout
    assert "binary data" in result.stdout
    titles = sorted(a["title"] for a in stream_articles(redis_client))
    assert titles == ["A good title", "Café title"]
    # The poison document is a dead letter with its reason and its original message.
    (dead,) = stream_records(redis_client, "ingest:dead")
    assert dead["stage"] == "clean" and "no article text left" in dead["reason"]
    assert dead["message"]["content"].startswith("Title")


def test_every_published_article_validates_against_the_schema(
    env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    for i in range(30):
        (tmp_path / f"doc{i:02}.txt").write_text(
            f"Title number {i}\n\nParagraph {i} of a story about item {i * 7}.\n\nBy Jane Roe\n"
        )
    result = run_cli("replay", str(tmp_path), "--wait", "--batch-size", "7", env=env)
    assert result.returncode == 0, result.stderr
    articles = stream_articles(redis_client)
    assert len(articles) == 30
    for article in articles:
        validate_article(article)
        assert article["author"] == "Jane Roe"


def test_clean_gives_the_same_article_as_the_pipeline(
    env: dict[str, str], redis_client: redis.Redis
) -> None:
    assert replay(env, str(SEED)).returncode == 0
    (published,) = stream_articles(redis_client)
    offline = run_cli("clean", str(SEED), env=env)
    assert offline.returncode == 0, offline.stderr
    cleaned = json.loads(offline.stdout)
    published.pop("fetched_at")
    cleaned.pop("fetched_at")
    assert cleaned == published


def test_tail_prints_the_article(env: dict[str, str], redis_client: redis.Redis) -> None:
    assert replay(env, str(SEED)).returncode == 0
    raw = run_cli("tail", "--json", "--count", "5", env=env)
    assert raw.returncode == 0, raw.stderr
    (line,) = raw.stdout.splitlines()
    assert_seed_article(json.loads(line))
    human = run_cli("tail", env=env)
    assert "Head Of Iran’s IRGC Operations In Syria Killed Near Aleppo" in human.stdout
    assert "Tyler Durden" in human.stdout


def test_tail_follow_prints_new_articles_as_they_arrive(
    env: dict[str, str], redis_client: redis.Redis, tmp_path: Path
) -> None:
    assert replay(env, str(SEED)).returncode == 0
    tail = subprocess.Popen(
        [sys.executable, "-m", "worker", "tail", "--follow", "--json", "--count", "1"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert tail.stdout is not None
        first = json.loads(tail.stdout.readline())  # the newest entry, shown first
        assert first["title"] == SEED_TITLE
        (tmp_path / "later.txt").write_text("A later story\n\nIt arrived after tail started.\n")
        assert replay(env, str(tmp_path)).returncode == 0
        later = json.loads(tail.stdout.readline())
        assert later["title"] == "A later story"
    finally:
        stop_process(tail)


def test_worker_logs_are_json_lines_bound_to_task_and_document(
    env: dict[str, str], redis_client: redis.Redis, celery_worker: WorkerProcess
) -> None:
    assert replay(env, str(SEED), "--force").returncode == 0
    events = [
        json.loads(line) for line in celery_worker.log_text().splitlines() if line.startswith("{")
    ]
    published = [e for e in events if e.get("event") == "document.published"]
    assert published, "no document.published log line"
    line = published[-1]
    assert line["task_id"] and line["doc_id"] and line["article_id"]
    assert line["component"] == "worker" and line["task"] == "ingest.documents"


def test_a_file_named_twice_is_replayed_once(
    env: dict[str, str], redis_client: redis.Redis
) -> None:
    result = replay(env, str(SEED), str(SEEDS), str(SEED))
    assert result.returncode == 0, result.stderr
    # published 1, duplicates 0, failed 0, pending 0
    assert re.search(r"│\s*1\s*│\s*0\s*│\s*0\s*│\s*0\s*│", result.stdout), result.stdout
    assert len(stream_articles(redis_client)) == 1


def test_a_broken_rule_pack_dead_letters_the_batch_instead_of_losing_it(
    redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    """A worker whose packs cannot load fails its task; every document of it still ends
    as a dead letter with the reason, and in the run's summary."""
    # Its own database: the session's worker must not take these tasks.
    url = redis_server.url.rsplit("/", 1)[0] + "/3"
    client = redis.Redis.from_url(url)
    client.flushdb()  # our own server, our own database
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "broken.yaml").write_text("pack: broken\ndescription: d\nrules:\n  - id: nope\n")
    env = clean_env(
        REDIS_URL=url, INGEST_RULES_DIR=str(rules), INGEST_DATA_DIR=str(tmp_path / "var")
    )
    worker = start_worker(env, tmp_path / "worker.log", name="broken", pool="solo")
    try:
        result = replay(env, str(SEED))
        assert result.returncode == 1
        assert "RuleError" in result.stdout and "broken.yaml" in result.stdout
        (dead,) = stream_records(client, "ingest:dead")
        assert dead["stage"] == "task" and "broken.yaml" in dead["reason"]
        assert dead["source_ref"] == str(SEED)
        assert client.xlen("ingest:articles") == 0
    finally:
        worker.stop()
        client.flushdb()
        client.close()

"""Feeds end to end on real parts: `ingest feeds` commands, the scheduler's tick, poll
tasks in a real worker, a real local HTTP server, articles on the stream."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from tests.expectations import validate_article
from tests.feedserver import FeedServer
from tests.helpers import WorkerProcess, clean_env, run_cli, start_worker, wait_for
from worker.embedded_redis import EmbeddedRedis

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "feeds"
PARAGRAPH = "The council's budget meeting ran late into the night as members debated. " * 6
EVENING = PARAGRAPH.replace("night", "evening")


def articles(client: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(fields[b"article"]) for _, fields in client.xrange("ingest:articles")]


def feeds_json(env: dict[str, str]) -> list[dict[str, Any]]:
    listed = run_cli("feeds", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


@pytest.fixture
def env(service_env: dict[str, str], redis_client: redis.Redis, celery_worker: WorkerProcess):
    return service_env


def test_add_poll_list_remove(
    env: dict[str, str], redis_client: redis.Redis, feed_server: FeedServer
) -> None:
    url = feed_server.route(
        "/wp.xml",
        body=(FIXTURES / "wordpress-rss.xml").read_bytes(),
        headers={"Content-Type": "application/rss+xml"},
    )
    added = run_cli("feeds", "add", url, "--name", "WordPress blog", env=env)
    assert added.returncode == 0 and "added" in added.stdout, added.stderr
    polled = run_cli("feeds", "poll", url, env=env)
    assert polled.returncode == 0, polled.stdout + polled.stderr
    assert "ok, HTTP 200, 3 new entries" in polled.stdout
    wait_for(lambda: len(articles(redis_client)) == 3, timeout=30, what="3 articles")
    for article in articles(redis_client):
        validate_article(article)
        assert article["source_kind"] == "feed" and article["feed_url"] == url
        assert article["author"] and article["published_at"] and article["categories"]
    (feed,) = feeds_json(env)
    assert feed["status"] == "ok" and feed["last_http_status"] == 200
    assert feed["entries_seen"] == 3 and feed["next_poll_at"]
    table = run_cli("feeds", "list", env=env)
    assert "WordPress blog" in table.stdout and url in table.stdout
    # Polling again finds nothing new.
    again = run_cli("feeds", "poll", url, env=env)
    assert "0 new entries" in again.stdout
    removed = run_cli("feeds", "remove", url, env=env)
    assert removed.returncode == 0 and feeds_json(env) == []


def test_the_scheduler_tick_polls_due_feeds(
    env: dict[str, str], redis_client: redis.Redis, feed_server: FeedServer
) -> None:
    def json_feed(i: int) -> bytes:
        items = [
            {
                "id": f"f{i}-{n}",
                "url": f"https://f{i}.example/{n}",
                "title": f"Feed {i} #{n}",
                "content_text": f"Story {n} of feed {i}. " + PARAGRAPH,
            }
            for n in range(2)
        ]
        return json.dumps(
            {"version": "https://jsonfeed.org/version/1.1", "title": f"Feed {i}", "items": items}
        ).encode()

    urls = [feed_server.route(f"/f{i}.json", body=json_feed(i)) for i in range(3)]
    for url in urls:
        assert run_cli("feeds", "add", url, env=env).returncode == 0
    Celery(broker=env["REDIS_URL"]).send_task("scheduler.tick", queue="scheduler")
    wait_for(
        lambda: all(f["polls"] == 1 for f in feeds_json(env)) and len(feeds_json(env)) == 3,
        timeout=30,
        what="every due feed polled",
    )
    assert all(f["status"] == "ok" for f in feeds_json(env))
    wait_for(lambda: len(articles(redis_client)) == 6, timeout=30, what="6 articles")


def test_a_teaser_entry_is_published_with_the_article_page(
    env: dict[str, str], redis_client: redis.Redis, feed_server: FeedServer
) -> None:
    page = feed_server.route(
        "/news/budget.html",
        body=(
            "<html><head><title>Budget passes | Courier</title>"
            '<meta name="author" content="Jo Reporter"></head><body><nav>Home</nav><article>'
            f"<h1>Budget passes</h1><p>{PARAGRAPH}</p><p>{EVENING}</p>"
            "</article></body></html>"
        ).encode(),
        headers={"Content-Type": "text/html; charset=utf-8"},
    )
    feed = feed_server.route(
        "/teaser.xml",
        body=(
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Courier</title>'
            "<link>https://courier.example/</link><item><title>Budget passes</title>"
            f"<link>{page}</link><guid>{page}</guid>"
            "<description><![CDATA[<p>The budget passed after a long night. "
            f'<a href="{page}">Continue reading →</a></p>]]></description>'
            "</item></channel></rss>"
        ).encode(),
    )
    assert run_cli("feeds", "add", feed, env=env).returncode == 0
    assert run_cli("feeds", "poll", feed, env=env).returncode == 0
    (article,) = wait_for(lambda: articles(redis_client), timeout=30, what="the article")
    assert article["source_kind"] == "page"
    assert article["title"] == "Budget passes"
    assert article["text"].count("budget meeting ran late") == 12
    assert "Continue reading" not in article["text"] and "Home" not in article["text"]
    assert feed_server.hits("/news/budget.html") == 1


def test_feed_files_replay_and_clean_entry_by_entry(
    env: dict[str, str], redis_client: redis.Redis
) -> None:
    atom = FIXTURES / "atom-blog.xml"
    cleaned = run_cli("clean", str(atom), str(FIXTURES / "jsonfeed.json"), env=env)
    assert cleaned.returncode == 0, cleaned.stderr
    lines = [json.loads(line) for line in cleaned.stdout.splitlines()]
    assert len(lines) == 6 and all(a["source_kind"] == "feed" for a in lines)
    for article in lines:
        validate_article(article)
    replayed = run_cli("replay", str(atom), "--wait", env=env)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert {a["title"] for a in articles(redis_client)} == {
        a["title"] for a in lines if a["source_ref"].startswith(str(atom))
    }


def test_a_worker_killed_holding_a_lease_the_feed_is_polled_again_after_it(
    redis_server: EmbeddedRedis, feed_server: FeedServer, tmp_path: Path
) -> None:
    # Its own database and workers: the session's worker must not take these tasks.
    url_db = redis_server.url.rsplit("/", 1)[0] + "/5"
    client = redis.Redis.from_url(url_db)
    client.flushdb()  # our own server, our own database
    env = clean_env(REDIS_URL=url_db, INGEST_POLL_LEASE="3", INGEST_DATA_DIR=str(tmp_path))
    feed = feed_server.route("/slow.xml", body=(FIXTURES / "atom-blog.xml").read_bytes(), delay=30)
    assert run_cli("feeds", "add", feed, env=env).returncode == 0
    app = Celery(broker=url_db)

    first = start_worker(env, tmp_path / "doomed.log", name="doomed", own_group=True)
    second = None
    try:
        app.send_task("scheduler.tick", queue="scheduler")
        wait_for(lambda: feed_server.hits("/slow.xml") == 1, timeout=30, what="the first fetch")
        # The machine dies: the worker and its pool processes, at once.
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait()
        feed_server.route("/slow.xml", body=(FIXTURES / "atom-blog.xml").read_bytes())
        second = start_worker(env, tmp_path / "rescuer.log", name="rescuer", own_group=True)

        def polled() -> bool:
            app.send_task("scheduler.tick", queue="scheduler")
            state = json.loads(run_cli("feeds", "list", "--json", env=env).stdout)
            return state["polls"] == 1 and state["status"] == "ok"

        wait_for(polled, timeout=60, interval=1.0, what="the feed polled after the lease")
        assert feed_server.hits("/slow.xml") == 2
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
        client.flushdb()
        client.close()

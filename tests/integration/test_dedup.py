"""Repost dedup against a real Redis: every layer, story ids, what is not a duplicate,
two workers racing, expiry, story updates and forced replays."""

from __future__ import annotations

import json
import random
import threading
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis

from config.settings import load_settings
from pipelines.article import Article
from pipelines.dedup import NearOptions, Verdict, claim
from pipelines.documents import FeedFields, RawDocument
from pipelines.ingest import IngestOptions, Outcome, ingest_documents
from pipelines.neardup import Fingerprint, similarity
from pipelines.process import process_document
from pipelines.rules import RuleSet, rules_from_dir
from tests.helpers import SEED, WorkerProcess, wait_for
from tests.stories import BIKE_LANES, EDITORS_NOTE, LIBRARY_HOURS, page
from worker.embedded_redis import EmbeddedRedis

pytestmark = pytest.mark.integration

TTL = 600
_RULES: list[RuleSet] = []


def rules() -> RuleSet:
    if not _RULES:
        _RULES.append(rules_from_dir(load_settings({}).boilerplate_dir))
    return _RULES[0]


def html_doc(
    title: str,
    paragraphs: list[str],
    url: str,
    *,
    feed_url: str | None = None,
    guid: str | None = None,
    template: bool = False,
) -> RawDocument:
    content = (
        page(title, paragraphs)
        if template
        else f"<html><head><title>{title}</title></head><body><article>"
        + "".join(f"<p>{p}</p>" for p in paragraphs)
        + "</article></body></html>"
    )
    return RawDocument(
        kind="html",
        content=content,
        source_kind="feed" if feed_url else "page",
        url=url,
        feed_url=feed_url,
        feed=FeedFields(title=title, guid=guid) if feed_url else None,
        source_ref=url,
    )


def article(
    paragraphs: list[str], url: str, *, original_url: str | None = None, **kw: Any
) -> Article:
    doc = html_doc(kw.pop("title", "A story"), paragraphs, url, **kw)
    result = process_document(doc, rules(), default_tz=ZoneInfo("UTC")).article
    return result.model_copy(update={"original_url": original_url}) if original_url else result


def claim_one(client: redis.Redis, item: Article, **near: Any) -> Verdict:
    return claim(client, [item], ttl=TTL, near=NearOptions(**near))[0]


def options(**kw: Any) -> IngestOptions:
    return IngestOptions(
        rules=rules(),
        default_tz=ZoneInfo("UTC"),
        dedup_ttl=kw.pop("dedup_ttl", TTL),
        articles_stream="ingest:articles",
        duplicates_stream="ingest:duplicates",
        dead_stream="ingest:dead",
        **kw,
    )


def ingest(
    client: redis.Redis, doc: RawDocument, delivery: str | None = None, **kw: Any
) -> Outcome:
    (outcome,) = ingest_documents(
        client, [doc.to_message()], options(**kw), delivery_id=delivery or str(uuid.uuid4())
    )
    return outcome


def stream(client: redis.Redis, name: str) -> list[dict[str, Any]]:
    field = b"article" if name == "ingest:articles" else b"record"
    return [json.loads(fields[field]) for _, fields in client.xrange(name)]


# --- the layers ------------------------------------------------------------------------------


def test_the_same_text_elsewhere_is_a_duplicate_by_text(redis_client: redis.Redis) -> None:
    first = article(BIKE_LANES, "https://ledger.example/bike-lanes")
    repost = article(BIKE_LANES, "https://aggregator.example/p/123")
    assert not claim_one(redis_client, first).is_duplicate
    verdict = claim_one(redis_client, repost)
    assert verdict.owner_id == first.id and verdict.layer == "text"
    assert verdict.matched == first.content_hash


def test_tracking_parameters_and_www_do_not_make_another_article() -> None:
    first = article(BIKE_LANES, "https://www.ledger.example/bike-lanes?utm_source=rss")
    again = article(BIKE_LANES[:3], "http://ledger.example/bike-lanes/?cmpid=share")
    assert first.id == again.id  # one address, one article id
    assert first.canonical_url == "https://www.ledger.example/bike-lanes"


def test_an_edited_repost_is_a_near_duplicate_with_its_similarity(
    redis_client: redis.Redis,
) -> None:
    first = article(BIKE_LANES, "https://ledger.example/bike-lanes")
    claim_one(redis_client, first)
    for url, paragraphs in [
        ("https://partner.example/a", [*BIKE_LANES, EDITORS_NOTE]),
        ("https://partner.example/b", [EDITORS_NOTE, *BIKE_LANES]),
        ("https://partner.example/c", BIKE_LANES[:3]),
    ]:
        verdict = claim_one(redis_client, article(paragraphs, url))
        assert verdict.owner_id == first.id, url
        assert verdict.layer == "near", url
        assert verdict.jaccard is not None and verdict.containment is not None
        assert verdict.jaccard >= 0.5 or verdict.containment >= 0.7, url


def test_a_teaser_of_a_long_article_joins_it_by_its_lead(redis_client: redis.Redis) -> None:
    long = [*BIKE_LANES, *(p + f" ({i})" for i in range(4) for p in LIBRARY_HOURS)]
    first = article(long, "https://ledger.example/long-read")
    claim_one(redis_client, first)
    teaser = article([BIKE_LANES[0], BIKE_LANES[1][:120] + "…"], "https://feed.example/t")
    verdict = claim_one(redis_client, teaser)
    assert verdict.owner_id == first.id and verdict.layer == "lead"
    assert verdict.matched and verdict.matched.startswith("The city council voted")


def test_a_repost_naming_its_source_joins_it_whatever_its_text(
    redis_client: redis.Redis,
) -> None:
    first = article(BIKE_LANES, "https://ledger.example/bike-lanes")
    claim_one(redis_client, first)
    summary = article(
        ["Bike lanes approved, after months of argument. Read the story at the source."],
        "https://aggregator.example/p/9",
        original_url="https://www.ledger.example/bike-lanes?utm_source=aggregator",
    )
    verdict = claim_one(redis_client, summary)
    assert verdict.owner_id == first.id and verdict.layer == "original_url"


def test_a_source_seen_after_its_repost_joins_the_reposts_story(
    redis_client: redis.Redis,
) -> None:
    """The aggregator's summary came first and named its source; the source then arrives:
    one story, by the source the repost named — not "the same URL"."""
    summary = article(
        ["Bike lanes approved, after months of argument. Read the story at the source."],
        "https://aggregator.example/p/9",
        original_url="https://ledger.example/bike-lanes",
    )
    assert not claim_one(redis_client, summary).is_duplicate
    source = article(BIKE_LANES, "https://www.ledger.example/bike-lanes/")
    verdict = claim_one(redis_client, source)
    assert verdict.owner_id == summary.id and verdict.layer == "original_url"
    other = article(
        ["Another aggregator's two lines about the bike lanes, with a link to the source."],
        "https://other-aggregator.example/7",
        original_url="https://ledger.example/bike-lanes?utm_medium=social",
    )
    assert claim_one(redis_client, other).owner_id == summary.id


def test_an_article_seen_again_is_never_a_duplicate_of_itself(redis_client: redis.Redis) -> None:
    first = article(BIKE_LANES, "https://ledger.example/bike-lanes")
    assert not claim_one(redis_client, first).is_duplicate
    assert not claim_one(redis_client, first).is_duplicate
    # Refetched with an edited text, and another story in the index near that text.
    claim_one(redis_client, article([*BIKE_LANES, EDITORS_NOTE], "https://x.example/1"))
    edited = article([*BIKE_LANES[:3], EDITORS_NOTE], "https://ledger.example/bike-lanes")
    assert edited.id == first.id
    assert not claim_one(redis_client, edited).is_duplicate


def test_the_script_estimates_what_the_python_estimates(redis_client: redis.Redis) -> None:
    first = article(BIKE_LANES, "https://ledger.example/1")
    repost = article([EDITORS_NOTE, *BIKE_LANES[:3]], "https://partner.example/1")
    claim_one(redis_client, first)
    verdict = claim_one(redis_client, repost)
    assert first.fingerprint and repost.fingerprint and verdict.layer == "near"
    jaccard, containment = similarity(
        Fingerprint.unpack(bytes.fromhex(repost.fingerprint)),
        Fingerprint.unpack(bytes.fromhex(first.fingerprint)),
    )
    assert verdict.jaccard == pytest.approx(jaccard)
    assert verdict.containment == pytest.approx(containment)


def test_one_paragraph_sharing_only_an_opening_is_not_a_teaser(redis_client: redis.Redis) -> None:
    """Thirty identical words (a press release's stock opening) and then another story: a
    one-paragraph text is a teaser only if it is the first paragraph, or not much more
    than the shared opening."""
    opening = BIKE_LANES[0]
    claim_one(redis_client, article(BIKE_LANES, "https://ledger.example/1"))
    other = article([f"{opening} {LIBRARY_HOURS[1]} {LIBRARY_HOURS[2]}"], "https://o.example/1")
    assert not claim_one(redis_client, other).is_duplicate
    assert claim_one(redis_client, article([opening], "https://teaser.example/1")).is_duplicate


def test_a_guid_names_an_entry_across_feeds_only_when_it_is_global(
    redis_client: redis.Redis,
) -> None:
    feed_a, feed_b = "https://a.example/feed", "https://b.example/feed"
    local_1 = article(BIKE_LANES, "https://a.example/1", feed_url=feed_a, guid="1")
    local_2 = article(LIBRARY_HOURS, "https://b.example/1", feed_url=feed_b, guid="1")
    assert not claim_one(redis_client, local_1).is_duplicate
    assert not claim_one(redis_client, local_2).is_duplicate  # "1" in two feeds: two entries
    tag = "tag:ledger.example,2026:story-77"
    first = article(["Short note one."], "https://a.example/77", feed_url=feed_a, guid=tag)
    mirror = article(["Short note two."], "https://m.example/77", feed_url=feed_b, guid=tag)
    claim_one(redis_client, first)
    verdict = claim_one(redis_client, mirror)
    assert verdict.owner_id == first.id and verdict.layer == "guid"


def test_a_duplicates_address_becomes_an_alias_of_its_story(redis_client: redis.Redis) -> None:
    first = article(BIKE_LANES, "https://ledger.example/bike-lanes")
    claim_one(redis_client, first)
    claim_one(redis_client, article(BIKE_LANES, "https://mirror.example/x"))
    # Later the mirror's page changes entirely: still the same story by its address.
    later = article(["An unrelated update with other words."], "https://mirror.example/x")
    verdict = claim_one(redis_client, later)
    assert verdict.owner_id == first.id and verdict.layer == "url"


# --- what is not a duplicate -----------------------------------------------------------------


def test_two_stories_sharing_a_template_and_a_beat_are_two_stories(
    redis_client: redis.Redis,
) -> None:
    bikes = html_doc("Bike lanes approved", BIKE_LANES, "https://ledger.example/1", template=True)
    books = html_doc("Library hours cut", LIBRARY_HOURS, "https://ledger.example/2", template=True)
    outcomes = [ingest(redis_client, bikes), ingest(redis_client, books)]
    assert [o.status for o in outcomes] == ["published", "published"]
    published = stream(redis_client, "ingest:articles")
    assert len({a["story_id"] for a in published}) == 2
    assert all(a["story_id"] == a["id"] for a in published)


def test_short_texts_are_only_exact_duplicates(redis_client: redis.Redis) -> None:
    one = article(["Council meets at noon on Tuesday in the main chamber."], "https://a.example/1")
    other = article(
        ["Council meets at noon on Thursday in the main chamber."], "https://b.example/1"
    )
    claim_one(redis_client, one)
    assert not claim_one(redis_client, other).is_duplicate
    same = article(["Council meets at noon on Tuesday in the main chamber!"], "https://c.example/1")
    assert claim_one(redis_client, same).layer == "text"


def test_the_near_layer_can_be_turned_off(redis_client: redis.Redis) -> None:
    claim_one(redis_client, article(BIKE_LANES, "https://ledger.example/1"), enabled=False)
    edited = article([*BIKE_LANES, EDITORS_NOTE], "https://partner.example/1")
    assert not claim_one(redis_client, edited, enabled=False).is_duplicate


# --- stories through the pipeline ------------------------------------------------------------


def test_duplicates_go_to_their_stream_with_the_evidence(redis_client: redis.Redis) -> None:
    first = ingest(redis_client, html_doc("Bike lanes", BIKE_LANES, "https://ledger.example/1"))
    edited = html_doc("Bike lanes!", [*BIKE_LANES, EDITORS_NOTE], "https://partner.example/1")
    outcome = ingest(redis_client, edited)
    assert outcome.status == "duplicate" and outcome.duplicate_of == first.article_id
    assert outcome.layer == "near" and "Jaccard" in (outcome.reason or "")
    (published,) = stream(redis_client, "ingest:articles")
    (record,) = stream(redis_client, "ingest:duplicates")
    assert record["duplicate_of"] == record["story_id"] == published["id"]
    assert record["layer"] == "near" and 0.5 <= record["similarity"] <= 1
    evidence = record["evidence"]
    assert evidence["url"] == "https://partner.example/1" and evidence["title"] == "Bike lanes!"
    assert evidence["fingerprint"] and evidence["content_hash"] != published["content_hash"]


def test_a_longer_later_version_is_published_as_an_update_when_asked(
    redis_client: redis.Redis,
) -> None:
    updates = NearOptions(update_ratio=1.5)
    teaser = html_doc("Bike lanes", BIKE_LANES[:2], "https://wire.example/t")
    full = html_doc("Bike lanes", BIKE_LANES, "https://ledger.example/full")
    mirror = html_doc("Bike lanes", BIKE_LANES, "https://mirror.example/full")
    first = ingest(redis_client, teaser, near=updates)
    update = ingest(redis_client, full, "task-7", near=updates)
    again = ingest(redis_client, mirror, near=updates)
    assert first.status == update.status == "published"
    assert update.update_of == first.article_id and "longer version" in (update.reason or "")
    assert again.status == "duplicate" and again.duplicate_of == first.article_id
    articles = stream(redis_client, "ingest:articles")
    assert [a.get("update_of") for a in articles] == [None, first.article_id]
    assert {a["story_id"] for a in articles} == {first.article_id}
    # The update's task retried (its appends already made): still the update, once.
    retried = ingest(redis_client, full, "task-7", near=updates)
    assert retried.status == "published" and retried.update_of == first.article_id
    assert len(stream(redis_client, "ingest:articles")) == 2
    # Without the setting, the same longer version is a plain duplicate.
    redis_client.delete(*redis_client.keys("ingest:*"))
    ingest(redis_client, teaser)
    assert ingest(redis_client, full).status == "duplicate"


def test_force_bypasses_dedup(redis_client: redis.Redis) -> None:
    ingest(redis_client, html_doc("Bike lanes", BIKE_LANES, "https://ledger.example/1"))
    repost = html_doc("Bike lanes", BIKE_LANES, "https://aggregator.example/1")
    assert ingest(redis_client, repost, force=True).status == "published"
    assert len(stream(redis_client, "ingest:articles")) == 2


# --- two workers at once ---------------------------------------------------------------------

WORDS = (
    *("harbor", "council", "budget", "school", "ferry", "mayor", "court", "river", "bridge"),
    *("storm", "library", "union", "police", "market", "tower", "museum", "station"),
    *("garden", "clinic", "village", "county", "street", "ballot", "teacher", "nurse"),
    *("farmer", "driver", "artist", "judge", "engineer", "pilot", "baker", "sailor", "miner"),
)


def round_story(n: int) -> list[str]:
    """A distinct story for each round (random words: rounds never match each other)."""
    rng = random.Random(n)
    return [" ".join(rng.choice(WORDS) for _ in range(40)) + "." for _ in range(3)]


def test_two_workers_with_two_copies_at_once_agree_on_one_owner(
    redis_server: EmbeddedRedis, redis_client: redis.Redis
) -> None:
    """Each round, two threads with their own connections claim two copies of one story
    (the second edited: a near-duplicate), released at the same instant right before the
    script runs."""
    rounds = 100
    clients = [redis.Redis(host="127.0.0.1", port=redis_server.port) for _ in range(2)]
    try:
        for n in range(rounds):
            story = round_story(n)
            copies = [
                article(story, f"https://one.example/{n}"),
                article([*story, EDITORS_NOTE], f"https://two.example/{n}"),
            ]
            barrier = threading.Barrier(2)
            verdicts: list[Verdict | None] = [None, None]

            def run(
                i: int,
                copies: list[Article] = copies,
                barrier: threading.Barrier = barrier,
                verdicts: list[Verdict | None] = verdicts,
            ) -> None:
                barrier.wait()
                verdicts[i] = claim(clients[i], [copies[i]], ttl=TTL, near=NearOptions())[0]

            threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            decided = [v for v in verdicts if v is not None]
            assert len(decided) == 2, n
            assert len({v.owner_id for v in decided}) == 1, (n, decided)
            assert sorted(v.is_duplicate for v in decided) == [False, True], (n, decided)
    finally:
        for client in clients:
            client.close()


def test_two_celery_worker_processes_racing_agree_on_one_article(
    redis_client: redis.Redis, celery_worker: WorkerProcess, service_env: dict[str, str]
) -> None:
    """The same through the real worker (two processes): both copies of each story sent at
    once as two tasks."""
    from celery import Celery

    app = Celery(broker=service_env["REDIS_URL"])
    rounds = 20
    for n in range(rounds):
        story = round_story(1000 + n)
        for i, paragraphs in enumerate([story, [*story, EDITORS_NOTE]]):
            message = html_doc("Race", paragraphs, f"https://site{i}.example/{n}").to_message()
            app.send_task("ingest.documents", args=[[message]], queue="ingest")

    def settled() -> bool:
        total = redis_client.xlen("ingest:articles") + redis_client.xlen("ingest:duplicates")
        return total == 2 * rounds

    wait_for(settled, timeout=60, what="every copy decided")
    articles = stream(redis_client, "ingest:articles")
    duplicates = stream(redis_client, "ingest:duplicates")
    assert len(articles) == len(duplicates) == rounds
    assert {d["duplicate_of"] for d in duplicates} == {a["id"] for a in articles}
    app.close()


# --- expiry ----------------------------------------------------------------------------------


def test_every_dedup_key_expires_and_then_the_story_is_new_again(
    redis_client: redis.Redis,
) -> None:
    first = article(
        BIKE_LANES, "https://ledger.example/1", feed_url="https://l.example/f", guid="9"
    )
    repost = article([*BIKE_LANES, EDITORS_NOTE], "https://partner.example/1")
    ttl = 2
    claim(redis_client, [first], ttl=ttl, near=NearOptions())
    assert claim(redis_client, [repost], ttl=ttl, near=NearOptions())[0].is_duplicate
    keys = [
        k
        for pattern in ("ingest:dedup:*", "ingest:lsh:*", "ingest:sig:*")
        for k in redis_client.keys(pattern)
    ]
    assert len(keys) > 25
    assert all(0 < redis_client.ttl(k) <= 2 * ttl for k in keys)  # nothing kept for ever
    wait_for(
        lambda: not any(redis_client.exists(k) for k in keys), timeout=4 * ttl + 5, what="expiry"
    )
    again = claim(redis_client, [repost], ttl=ttl, near=NearOptions())[0]
    assert not again.is_duplicate


def test_the_story_record_outlives_its_entries_while_reposts_keep_coming(
    redis_client: redis.Redis,
) -> None:
    first = article(BIKE_LANES, "https://ledger.example/1")
    claim(redis_client, [first], ttl=60, near=NearOptions())
    record = f"ingest:sig:{first.id[:16]}"
    redis_client.expire(record, 5)
    claim(
        redis_client, [article(BIKE_LANES, "https://mirror.example/1")], ttl=60, near=NearOptions()
    )
    assert redis_client.ttl(record) > 50  # a repost keeps the story for another horizon
    later = article([*BIKE_LANES, EDITORS_NOTE], "https://third.example/1")
    assert claim(redis_client, [later], ttl=60, near=NearOptions())[0].owner_id == first.id


def test_the_seed_and_its_html_repost_are_one_story(redis_client: redis.Redis) -> None:
    seed_text = SEED.read_text(encoding="utf-8")
    title, _, body = seed_text.partition("\n")
    paragraphs = [p for p in body.split("\n\n") if p.strip()][1:15]
    seed_doc = RawDocument(kind="text", content=seed_text, source_kind="seed", source_ref=str(SEED))
    repost = html_doc(
        title,
        [*paragraphs, "This article originally appeared on ZeroHedge."],
        "https://agg.example/s",
    )
    first = ingest(redis_client, seed_doc)
    outcome = ingest(redis_client, repost)
    assert first.status == "published"
    assert outcome.status == "duplicate" and outcome.duplicate_of == first.article_id

"""One batch of documents through the stages: process → dedup → publish.

Every document ends in exactly one visible place: published on the articles stream, a
duplicate (on the duplicates stream when another article owns it, or reported as already
published), or failed (a dead letter on the dead stream carrying its reason and the
original message, so it can be inspected and requeued). Redis errors propagate: the
caller retries the whole batch, which is safe because every append is idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import tzinfo
from typing import Any, Literal

import redis
import structlog

from pipelines.article import Article
from pipelines.dedup import NearOptions, Verdict, claim
from pipelines.documents import DocumentError, RawDocument
from pipelines.process import process_document
from pipelines.publish import Append, Appended, append_once, article_fields, record_fields
from pipelines.rules import RuleSet

log = structlog.get_logger("pipelines.ingest")

Status = Literal["published", "duplicate", "failed"]


@dataclass(frozen=True, slots=True)
class IngestOptions:
    rules: RuleSet
    default_tz: tzinfo
    dedup_ttl: int
    articles_stream: str
    duplicates_stream: str
    dead_stream: str
    force: bool = False  # skip dedup and publish again (a new entry per delivery)
    near: NearOptions = field(default_factory=NearOptions)  # near layer, story updates
    max_share: float = 0.5  # the rules' valve (rule_max_share)
    # Fetches an article page for a teaser entry: (final URL, HTML), or None when the
    # page cannot be had. None: teasers are published as the feed has them.
    fetch_page: Callable[[str], tuple[str, str] | None] | None = None
    # Seconds a batch may spend fetching pages; after that teasers keep the feed's text
    # (a few hanging pages must not push the whole batch past its time limit).
    page_budget: float = 120.0


@dataclass(frozen=True, slots=True)
class Outcome:
    doc_id: str
    source_ref: str | None
    status: Status
    article_id: str | None = None
    title: str | None = None
    entry_id: str | None = None
    duplicate_of: str | None = None
    update_of: str | None = None
    layer: str | None = None
    similarity: float | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True, slots=True)
class _Failure:
    stage: str
    reason: str


def _process(
    message: dict[str, Any], options: IngestOptions, *, fallback_id: str, page_deadline: float
) -> tuple[str, str | None, Article | _Failure]:
    try:
        doc = RawDocument.from_message(message)
    except DocumentError as exc:
        return fallback_id, None, _Failure(exc.stage, exc.reason)
    with structlog.contextvars.bound_contextvars(doc_id=doc.doc_id, source_ref=doc.source_ref):
        try:
            return doc.doc_id, doc.source_ref, _article(doc, options, page_deadline)
        except DocumentError as exc:
            return doc.doc_id, doc.source_ref, _Failure(exc.stage, exc.reason)
        except Exception as exc:  # a bug met by one document must not sink the batch
            log.exception("document.crashed")
            return doc.doc_id, doc.source_ref, _Failure("process", f"{type(exc).__name__}: {exc}")


def _article(doc: RawDocument, options: IngestOptions, page_deadline: float) -> Article:
    """The article of a document. For a teaser entry the article page is fetched too
    (while the batch's page budget lasts), and its text used when it is longer than what
    the feed carried."""
    feed_version: Article | None = None
    feed_failure: DocumentError | None = None
    try:
        feed_version = process_document(
            doc, options.rules, default_tz=options.default_tz, max_share=options.max_share
        ).article
    except DocumentError as exc:
        feed_version, feed_failure = None, exc
    wants_page = doc.feed is not None and doc.feed.teaser and doc.url and options.fetch_page
    if wants_page and time.monotonic() >= page_deadline:
        log.warning("page.skipped", url=doc.url, reason="the batch's page-fetch budget is spent")
    elif wants_page:
        assert options.fetch_page is not None and doc.url is not None
        page = options.fetch_page(doc.url)
        if page is not None:
            final_url, html = page
            page_doc = replace(doc, kind="html", content=html, url=final_url, source_kind="page")
            try:
                page_version = process_document(
                    page_doc,
                    options.rules,
                    default_tz=options.default_tz,
                    max_share=options.max_share,
                ).article
            except DocumentError as exc:
                log.warning("page.unusable", url=final_url, reason=exc.reason)
            else:
                if feed_version is None or page_version.word_count > feed_version.word_count:
                    return page_version
    if feed_version is None:
        assert feed_failure is not None
        raise feed_failure
    return feed_version


def ingest_documents(
    client: redis.Redis,
    messages: Sequence[dict[str, Any]],
    options: IngestOptions,
    *,
    delivery_id: str,
) -> list[Outcome]:
    """Run a batch of document messages through the pipeline. ``delivery_id`` names this
    delivery (the task id, stable across retries); it scopes dead letters and forced
    publications so a retry does not repeat them."""
    page_deadline = time.monotonic() + options.page_budget
    processed = [
        _process(
            message,
            options,
            fallback_id=f"malformed-{delivery_id}-{i}",
            page_deadline=page_deadline,
        )
        for i, message in enumerate(messages)
    ]
    articles = [item for _, _, item in processed if isinstance(item, Article)]
    verdicts: dict[str, Verdict] = {}
    if not options.force:
        verdicts = {
            v.article_id: v
            for v in claim(client, articles, ttl=options.dedup_ttl, near=options.near)
        }

    appends: list[Append] = []
    for (doc_id, source_ref, item), message in zip(processed, messages, strict=True):
        if isinstance(item, _Failure):
            appends.append(
                _dead_letter(options.dead_stream, doc_id, source_ref, item, message, delivery_id)
            )
            continue
        verdict = verdicts.get(item.id)
        if verdict is not None and verdict.is_duplicate:  # a first sighting is its own story
            item = _in_story(item, verdict)
        if verdict is not None and verdict.is_duplicate and not verdict.update:
            record = _duplicate_record(item, verdict)
            appends.append(
                Append(
                    options.duplicates_stream, f"dup:{item.id}", record_fields("duplicate", record)
                )
            )
        else:
            key = f"{item.id}:{delivery_id}" if options.force else item.id
            if verdict is not None and verdict.update:
                # One entry per version: the same article may later come again longer.
                key = f"{item.id}:update:{item.content_hash}"
            appends.append(Append(options.articles_stream, key, article_fields(item)))

    results = append_once(client, appends, ttl=options.dedup_ttl, delivery_id=delivery_id)
    return _log_outcomes(
        [
            _outcome(
                doc_id,
                source_ref,
                item,
                verdicts.get(item.id) if isinstance(item, Article) else None,
                appended,
            )
            for (doc_id, source_ref, item), appended in zip(processed, results, strict=True)
        ]
    )


def _in_story(article: Article, verdict: Verdict) -> Article:
    """The article with what dedup learnt: its story, whether it is an update of it."""
    return article.model_copy(
        update={
            "story_id": verdict.owner_id,
            "update_of": verdict.owner_id if verdict.update else None,
        }
    )


def _duplicate_record(article: Article, verdict: Verdict) -> dict[str, Any]:
    """What ``ingest:duplicates`` says of a repost: which story it joins, the layer that
    matched, how similar it is, and the evidence to check that by."""
    return {
        "id": article.id,
        "duplicate_of": verdict.owner_id,
        "story_id": verdict.owner_id,
        "layer": verdict.layer,
        "similarity": verdict.jaccard,
        "containment": verdict.containment,
        "evidence": {
            "matched": verdict.matched,
            "title": article.title,
            "url": article.url,
            "canonical_url": article.canonical_url,
            "original_url": article.original_url,
            "feed_url": article.feed_url,
            "guid": article.guid,
            "word_count": article.word_count,
            "content_hash": article.content_hash,
            "fingerprint": article.fingerprint,
            "source_ref": article.source_ref,
        },
    }


def fail_documents(
    client: redis.Redis,
    messages: Sequence[dict[str, Any]],
    *,
    stage: str,
    reason: str,
    dead_stream: str,
    ttl: int,
    delivery_id: str,
) -> list[Outcome]:
    """Dead-letter every message of a batch that could not be processed at all (the task
    failed for good), so that no document disappears with its task."""
    failure = _Failure(stage, reason)
    appends, refs = [], []
    for i, message in enumerate(messages):
        try:
            doc = RawDocument.from_message(message)
            doc_id, source_ref = doc.doc_id, doc.source_ref
        except DocumentError:
            doc_id, source_ref = f"malformed-{delivery_id}-{i}", None
        refs.append((doc_id, source_ref))
        appends.append(_dead_letter(dead_stream, doc_id, source_ref, failure, message, delivery_id))
    results = append_once(client, appends, ttl=ttl, delivery_id=delivery_id)
    return _log_outcomes(
        [
            _outcome(doc_id, source_ref, failure, None, appended)
            for (doc_id, source_ref), appended in zip(refs, results, strict=True)
        ]
    )


def _dead_letter(
    stream: str,
    doc_id: str,
    source_ref: str | None,
    failure: _Failure,
    message: dict[str, Any],
    delivery_id: str,
) -> Append:
    record = {
        "doc_id": doc_id,
        "source_ref": source_ref,
        "stage": failure.stage,
        "reason": failure.reason,
        "message": message,
    }
    return Append(stream, f"dead:{delivery_id}:{doc_id}", record_fields("dead", record))


def _log_outcomes(outcomes: list[Outcome]) -> list[Outcome]:
    for outcome in outcomes:
        fields = outcome.to_dict()
        if outcome.status == "failed":
            log.warning("document.failed", **fields)
        else:
            log.info(f"document.{outcome.status}", **fields)
    return outcomes


def _outcome(
    doc_id: str,
    source_ref: str | None,
    item: Article | _Failure,
    verdict: Verdict | None,
    appended: Appended,
) -> Outcome:
    entry_id = appended.entry_id
    if isinstance(item, _Failure):
        return Outcome(
            doc_id, source_ref, "failed", entry_id=entry_id, reason=f"{item.stage}: {item.reason}"
        )
    common = {"article_id": item.id, "title": item.title, "entry_id": entry_id}
    if verdict is not None and verdict.is_duplicate and not verdict.update:
        return Outcome(
            doc_id,
            source_ref,
            "duplicate",
            duplicate_of=verdict.owner_id,
            layer=verdict.layer,
            similarity=verdict.jaccard,
            reason=_match_reason(verdict),
            **common,
        )
    if not appended.by_this_delivery:  # a retry of this delivery still reports its work
        return Outcome(
            doc_id,
            source_ref,
            "duplicate",
            duplicate_of=item.id,
            layer="id",
            reason=f"already published as entry {entry_id}",
            **common,
        )
    if verdict is not None and verdict.update:
        return Outcome(
            doc_id,
            source_ref,
            "published",
            update_of=verdict.owner_id,
            layer=verdict.layer,
            similarity=verdict.jaccard,
            reason=f"a longer version of story {verdict.owner_id}: {_match_reason(verdict)}",
            **common,
        )
    return Outcome(doc_id, source_ref, "published", **common)


def _match_reason(verdict: Verdict) -> str:
    if verdict.layer == "near":
        return (
            f"near-duplicate of article {verdict.owner_id} (Jaccard {verdict.jaccard:.2f}, "
            f"containment {verdict.containment:.2f})"
        )
    if verdict.layer == "original_url":
        return f"names article {verdict.owner_id} as its source"
    return f"same {verdict.layer} as article {verdict.owner_id}"

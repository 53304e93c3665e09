"""From a raw document to a normalized article: parse → clean → build.

Pure (no Redis, no network): the worker runs it inside a task, ``ingest clean`` runs it
offline, and both get the same article for the same input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from itertools import groupby

from pipelines.article import Article, article_id
from pipelines.clean import CleanResult, clean
from pipelines.documents import DocumentError, RawDocument
from pipelines.neardup import fingerprint
from pipelines.parse import parse_document
from pipelines.rules import RuleSet
from pipelines.sanitize import paragraphs_html
from pipelines.text import content_hash, shorten, word_count
from pipelines.urls import alias_form, canonical_url

SUMMARY_LIMIT = 300
DEFAULT_MAX_SHARE = 0.5  # the rule_max_share setting's default


@dataclass(frozen=True, slots=True)
class Processed:
    article: Article
    cleaned: CleanResult


def process_document(
    doc: RawDocument,
    rules: RuleSet,
    *,
    default_tz: tzinfo,
    max_share: float = DEFAULT_MAX_SHARE,
) -> Processed:
    """Parse, clean and build the article; raises :class:`DocumentError` for a document
    that cannot become one (no title, no text left). ``max_share`` is the valve: a rule
    that would remove more of the text than that is held back."""
    parsed = parse_document(doc, default_tz=default_tz, rules=rules, max_share=max_share)
    cleaned = clean(parsed, rules, default_tz=default_tz, max_share=max_share)
    return Processed(build_article(cleaned, doc), cleaned)


def paragraphs(cleaned: CleanResult) -> list[tuple[int, str]]:
    """(paragraph index, text) of each kept paragraph, in order."""
    return [
        (index, cleaned.line_joiner.join(block.text for block in group))
        for index, group in groupby(cleaned.blocks, key=lambda block: block.paragraph)
    ]


def build_article(cleaned: CleanResult, doc: RawDocument) -> Article:
    kept = paragraphs(cleaned)
    paras = [text for _, text in kept]
    if not paras:
        fired = ", ".join(cleaned.removed_rule_ids) or "none"
        raise DocumentError(
            f"no article text left after removing boilerplate (rules fired: {fired})",
            stage="clean",
        )
    text = "\n\n".join(paras)
    meta = cleaned.meta
    digest = content_hash(text)
    near = fingerprint(text)
    canonical = canonical_url(meta.canonical_url) or canonical_url(meta.url)
    ident = article_id(alias_form(canonical) if canonical else None, digest)
    assert meta.title  # parse_document refuses untitled documents
    return Article(
        id=ident,
        story_id=ident,
        url=meta.url,
        canonical_url=canonical,
        original_url=meta.original_url,
        feed_url=doc.feed_url,
        guid=meta.guid,
        site=meta.site,
        title=meta.title,
        author=meta.author,
        published_at=meta.published_at,
        updated_at=meta.updated_at,
        fetched_at=doc.received_at,
        language=meta.language,
        text=text,
        html=paragraphs_html((text, cleaned.paragraph_html.get(i)) for i, text in kept),
        summary=shorten(meta.summary or paras[0], SUMMARY_LIMIT),
        categories=list(meta.categories),
        image=meta.image,
        word_count=word_count(text),
        content_hash=digest,
        fingerprint=near.packed().hex() if near else None,
        removed=cleaned.removed_rule_ids,
        source_kind=doc.source_kind,
        source_ref=doc.source_ref,
    )

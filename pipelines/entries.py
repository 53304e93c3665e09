"""Feed entries as pipeline documents, carrying what the feed says about each."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

import lxml.html
from lxml import etree

from pipelines.documents import FeedFields, RawDocument
from pipelines.feeds import FeedEntry, ParsedFeed, is_teaser
from pipelines.text import normalize_line


def html_text(fragment: str | None) -> str | None:
    if not fragment or not fragment.strip():
        return None
    try:
        text = lxml.html.fragment_fromstring(fragment, create_parent="div").text_content()
    except (etree.ParserError, ValueError):
        return normalize_line(fragment) or None
    return normalize_line(text) or None


def entry_document(
    entry: FeedEntry,
    parsed: ParsedFeed,
    *,
    feed_url: str | None,
    teaser_max_words: int,
    source_ref: str | None = None,
) -> RawDocument:
    """A feed entry as a pipeline document. A teaser (a summary only, or a "Read more"
    tail) with a link asks the pipeline to fetch the article page."""
    teaser = bool(entry.link) and is_teaser(entry, max_words=teaser_max_words)
    site = parsed.title or urlsplit(parsed.site_url or feed_url or "").hostname
    return RawDocument(
        kind="html",
        content=entry.best_html or "",
        source_kind="feed",
        source_ref=source_ref or entry.link or entry.guid or feed_url,
        url=entry.link,
        feed_url=feed_url,
        received_at=datetime.now(UTC),
        feed=FeedFields(
            title=entry.title,
            author=entry.author,
            published_at=entry.published_at,
            updated_at=entry.updated_at,
            guid=entry.guid,
            site=site,
            summary=html_text(entry.summary_html),
            categories=entry.categories,
            teaser=teaser,
        ),
    )

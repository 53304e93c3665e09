"""Parse a raw document into a title, metadata and a list of text blocks.

Blocks are lines in paragraphs; the boilerplate rules (``pipelines.clean``) then work on
the same block list whatever the document was: a plain-text seed or an HTML page.

Plain-text seed format (documented in the README):

* the first non-blank line is the title;
* then the body: paragraphs separated by blank lines; the lines of one paragraph are
  joined with a space;
* trailer lines (a byline, a dateline, an aggregator's footer) may follow; the rule packs
  recognise and remove them, capturing what they tell (author, time, source link).
"""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import tzinfo

from pipelines.documents import DocumentError, RawDocument
from pipelines.html import parse_html
from pipelines.parsed import Block, Metadata, ParsedDocument
from pipelines.rules import RuleSet
from pipelines.text import normalize_line

__all__ = ["Block", "Metadata", "ParsedDocument", "parse_document", "parse_text"]


def parse_document(
    doc: RawDocument, *, default_tz: tzinfo, rules: RuleSet, max_share: float
) -> ParsedDocument:
    """Parse a document. HTML is parsed once: its html rules run on the tree (capturing
    what they remove) before the article is taken from it."""
    if doc.kind == "text":
        parsed = parse_text(doc.content)
    elif doc.kind == "html":
        parsed = parse_html(
            doc.content,
            base_url=doc.url,
            default_tz=default_tz,
            rules=rules,
            page=doc.source_kind != "feed",
            max_share=max_share,
        )
    else:  # pragma: no cover - RawDocument.kind is a Literal; messages are checked
        raise DocumentError(f"unknown document kind {doc.kind!r}", stage="parse")
    meta = parsed.meta.fill(url=doc.url)
    if doc.feed is not None:
        # What the feed says about its entry wins over what the entry's HTML says.
        feed = doc.feed
        meta = Metadata(
            title=normalize_line(feed.title) if feed.title else None,
            author=feed.author,
            published_at=feed.published_at,
            updated_at=feed.updated_at,
            guid=feed.guid,
            site=feed.site,
            summary=feed.summary,
            categories=feed.categories,
        ).fill(**{f.name: getattr(meta, f.name) for f in fields(Metadata)})
    if not meta.title:
        hint = ": the first non-blank line should be one" if doc.kind == "text" else ""
        raise DocumentError(f"no title{hint}", stage="parse")
    return replace(parsed, meta=meta)


def parse_text(content: str) -> ParsedDocument:
    lines = content.splitlines()
    title: str | None = None
    blocks: list[Block] = []
    paragraph = 0
    in_paragraph = False
    for raw in lines:
        line = normalize_line(raw)
        if not line:
            if in_paragraph:
                paragraph += 1
                in_paragraph = False
            continue
        if title is None:
            title = line
            continue
        blocks.append(Block(line, paragraph))
        in_paragraph = True
    return ParsedDocument(meta=Metadata(title=title), blocks=blocks, line_joiner=" ")

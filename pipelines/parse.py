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

from dataclasses import dataclass, field, fields, replace
from datetime import datetime, tzinfo
from urllib.parse import urljoin, urlsplit, urlunsplit

import lxml.html
from lxml import etree

from pipelines.documents import DocumentError, RawDocument
from pipelines.text import normalize_line


@dataclass(frozen=True, slots=True)
class Block:
    """One line of text, and the paragraph it belongs to."""

    text: str
    paragraph: int


@dataclass(frozen=True, slots=True)
class Metadata:
    """What is known about a document apart from its text. Empty fields may be filled by
    what boilerplate rules capture (a byline's author, a dateline's time)."""

    title: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    updated_at: datetime | None = None
    url: str | None = None
    canonical_url: str | None = None
    original_url: str | None = None
    site: str | None = None
    language: str | None = None
    summary: str | None = None
    guid: str | None = None
    categories: tuple[str, ...] = ()

    def fill(self, **captured: object) -> Metadata:
        """A copy with each captured value set where the field is still empty."""
        empty = {k: v for k, v in captured.items() if v and not getattr(self, k)}
        return replace(self, **empty) if empty else self


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    meta: Metadata
    blocks: list[Block] = field(default_factory=list)
    # How the lines of one paragraph are joined: prose lines in text files reflow;
    # HTML <br> breaks are kept.
    line_joiner: str = " "


def parse_document(doc: RawDocument, *, default_tz: tzinfo) -> ParsedDocument:
    if doc.kind == "text":
        parsed = parse_text(doc.content)
    elif doc.kind == "html":
        parsed = parse_html(doc.content, base_url=doc.url, default_tz=default_tz)
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


# --- HTML ------------------------------------------------------------------------
# A plain extraction from the page structure; the cleaning issue replaces the body
# extraction with a maintained extractor. Metadata reading stays here.

_DROP_TAGS = (
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "iframe",
    "form",
    "nav",
    "aside",
    "button",
    "select",
    "textarea",
    "object",
    "embed",
    "canvas",
)
_BLOCK_TAGS = frozenset(
    ["p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "figcaption", "dt", "dd"]
)
_CONTENT_ROOTS = (
    "//article",
    "//*[@itemprop='articleBody']",
    "//main",
    "//*[@role='main']",
    "//body",
)


def parse_html(content: str, *, base_url: str | None, default_tz: tzinfo) -> ParsedDocument:
    try:
        root = lxml.html.document_fromstring(content)
    except (etree.ParserError, ValueError) as exc:
        raise DocumentError(f"unparseable HTML: {exc}", stage="parse") from exc
    meta = _html_metadata(root, base_url=base_url, default_tz=default_tz)
    for element in root.xpath("|".join(f"//{tag}" for tag in _DROP_TAGS)):
        element.drop_tree()
    body = next((found[0] for xp in _CONTENT_ROOTS if (found := root.xpath(xp))), root)
    return ParsedDocument(meta=meta, blocks=_html_blocks(body), line_joiner="\n")


def _html_blocks(container: lxml.html.HtmlElement) -> list[Block]:
    for br in container.iter("br"):
        br.tail = "\n" + (br.tail or "")
    blocks: list[Block] = []
    paragraph = 0
    leaves = [
        el
        for el in container.iter(*_BLOCK_TAGS)
        if not any(child.tag in _BLOCK_TAGS for child in el.iterdescendants())
    ]
    if not leaves:  # a fragment of bare text and inline markup
        leaves = [container]
    for element in leaves:
        lines = [normalize_line(line) for line in element.text_content().split("\n")]
        lines = [line for line in lines if line]
        if not lines:
            continue
        blocks.extend(Block(line, paragraph) for line in lines)
        paragraph += 1
    return blocks


def _first(root: lxml.html.HtmlElement, *xpaths: str) -> str | None:
    for xpath in xpaths:
        for value in root.xpath(xpath):
            text = normalize_line(str(value))
            if text:
                return text
    return None


def _html_metadata(
    root: lxml.html.HtmlElement, *, base_url: str | None, default_tz: tzinfo
) -> Metadata:
    def meta(*names: str) -> tuple[str, ...]:
        return tuple(
            f"//meta[@property='{n}' or @name='{n}' or @itemprop='{n}']/@content" for n in names
        )

    canonical = _first(root, "//link[@rel='canonical']/@href", *meta("og:url"))
    if canonical and base_url:
        canonical = urljoin(base_url, canonical)
    canonical = absolute_url(canonical)
    published_raw = _first(
        root,
        *meta("article:published_time", "datePublished", "pubdate", "date"),
        "//time[@datetime]/@datetime",
    )
    url = base_url or canonical
    return Metadata(
        title=_first(root, *meta("og:title", "twitter:title"), "//title/text()", "//h1//text()"),
        author=_first(root, *meta("author", "article:author"), "//*[@rel='author']//text()"),
        published_at=parse_timestamp(published_raw, default_tz) if published_raw else None,
        url=base_url,
        canonical_url=canonical,
        site=_first(root, *meta("og:site_name")) or (urlsplit(url).hostname if url else None),
        language=_first(root, "/html/@lang", *meta("og:locale")),
        summary=_first(root, *meta("description", "og:description")),
    )


def absolute_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL, with the scheme and host lower-cased and
    the fragment dropped; None otherwise. A relative canonical link on a page with no
    known address names nothing: two pages must not share "/story" as an identity.
    (Tracking parameters are stripped by the dedup issue's URL normalization.)"""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    netloc = parts.netloc.rsplit("@", 1)[-1].lower()
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


def parse_timestamp(value: str, default_tz: tzinfo) -> datetime | None:
    """An ISO 8601 time from page metadata; a time without a zone is taken to be in
    ``default_tz``. Unparseable values give None (metadata is a hint, not a contract)."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=default_tz)

"""HTML documents: parsed once, cleaned of widgets by the html rules, reduced to the
article, and read for metadata.

* One lxml tree per document. Metadata (meta tags, JSON-LD) is read from it first; links
  are made absolute against the document's URL; then the html rules remove the widgets
  they know (share blocks, comment threads, rating boxes…), capturing what those say
  (a "Go to Source" link's address), under the valve.
* A full page then goes to trafilatura (the best-measured maintained extractor), given
  the same tree, not the markup again. A feed entry's HTML is already the article: its
  blocks are taken as they are.
* The result is lines in paragraphs (for the line rules and the text) and each
  paragraph's markup (for the article's sanitized HTML).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from html import escape
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
import structlog
import trafilatura
from lxml import etree

from pipelines.documents import DocumentError
from pipelines.parsed import Block, Metadata, ParsedDocument, Removal
from pipelines.rules import HtmlMatcher, PageFeatures, RuleSet, parse_captured_time
from pipelines.text import LINE_BREAK, normalize_line, normalize_texts
from pipelines.urls import absolute_url

log = structlog.get_logger("pipelines.html")

# A rule may only be held back by the valve when it would remove at least this much text:
# a share widget is most of a two-line teaser, and that is no reason to keep it.
VALVE_MIN_CHARS = 300

# Never content, whatever the rules say: dropped before the rules run (so the valve
# weighs text, not code), and after them (a rule may look into a <noscript>).
_CODE = ("script", "style", "template")
_NEVER = (
    "noscript",
    "svg",
    "canvas",
    "object",
    "embed",
    # raw-text fallbacks: what a browser shows when it cannot (markup as text)
    "iframe",
    "noframes",
    "textarea",
    "xmp",
    "plaintext",
)
# Not content in a feed entry or a page once the article is taken from it.
_NOT_CONTENT = (
    "iframe",
    "form",
    "nav",
    "aside",
    "button",
    "select",
    "textarea",
    "input",
    "footer",
)
_CONTENT_ROOTS = (
    "//article",
    "//*[@itemprop='articleBody']",
    "//main",
    "//*[@role='main']",
    "//body",
)
# Comments and processing instructions are not content, and trafilatura reads a tree
# that still has them worse (it parses without them itself: this is its parser's setup).
_PARSER = lxml.html.HTMLParser(
    collect_ids=False, default_doctype=False, remove_comments=True, remove_pis=True
)
# C0 controls (but tab, newline, carriage return), DEL, the non-characters U+FFFE/FFFF and
# lone surrogates: not text, and lxml refuses to build trees holding them.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")
_PAGE_MARKUP = re.compile(r"<(?:!doctype|html|head|body)\b", re.IGNORECASE)
_ARTICLE_TYPES = {
    "article",
    "newsarticle",
    "blogposting",
    "reportagenewsarticle",
    "analysisnewsarticle",
    "opinionnewsarticle",
    "webpage",
    "liveblogposting",
    "techarticle",
    "scholarlyarticle",
}


def looks_like_page(content: str) -> bool:
    """A whole page (doctype, html, head or body near the top), not a fragment."""
    return _PAGE_MARKUP.search(content, 0, 4096) is not None


def parse_html(
    content: str,
    *,
    base_url: str | None,
    default_tz: tzinfo,
    rules: RuleSet,
    page: bool,
    max_share: float,
) -> ParsedDocument:
    content = _CONTROLS.sub("", content)
    page = page and looks_like_page(content)
    try:
        if page:
            root = lxml.html.document_fromstring(content, parser=_PARSER)
        else:
            root = lxml.html.fragment_fromstring(content, create_parent="div", parser=_PARSER)
    except (etree.ParserError, ValueError) as exc:
        raise DocumentError(f"unparseable HTML: {exc}", stage="parse") from exc
    if page and base_url:
        base_url = _document_base(root, base_url)
    meta = read_metadata(root, base_url=base_url, default_tz=default_tz) if page else Metadata()
    if base_url and not page:
        _absolutize(root, base_url)  # a page's links are resolved in its article only
    _drop(root, _CODE)
    removals, captured = apply_html_rules(
        root,
        rules.html_matchers(),
        max_share=max_share,
        default_tz=default_tz,
        base_url=base_url,
        scope=_content_root(root) if page else root,
        markup=content.lower(),
    )
    _drop(root, _NEVER)
    meta = meta.fill(**captured)
    extracted = _extract_page(root) if page else None
    if extracted is None:
        _drop(root, _NOT_CONTENT)
        container = _content_root(root) if page else root
        if page and base_url:
            _absolutize(container, base_url)
        blocks, markup = _leaf_blocks(container)
    else:
        blocks, markup = extracted
    return ParsedDocument(meta, blocks, "\n", markup, removals)


def _absolutize(root: lxml.html.HtmlElement, base_url: str) -> None:
    """Links and images resolved against ``base_url``. Only the two attributes the
    article's HTML keeps; lxml's make_links_absolute visits every attribute and inline
    style and cost more than the rest of a feed entry's cleaning."""
    for element in root.iter("a", "img"):
        attribute = "href" if element.tag == "a" else "src"
        value = element.get(attribute)
        if value and not value.startswith(("http://", "https://")):
            element.set(attribute, _join(base_url, value))


def _document_base(root: lxml.html.HtmlElement, base_url: str) -> str:
    """The address relative links of a page resolve against: its <base href>, if any."""
    base = root.find(".//head/base[@href]")
    return _join(base_url, base.get("href", "")) if base is not None else base_url


def _join(base_url: str, value: str) -> str:
    try:
        return urljoin(base_url, value.strip())
    except ValueError:  # a malformed address (an unclosed IPv6 bracket…): dropped later
        return "#"


def _drop(root: lxml.html.HtmlElement, tags: Iterable[str]) -> None:
    for element in list(root.iter(*tags)):
        if element is not root:
            element.drop_tree()


def _content_root(root: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    """The element that most likely holds the article: of the <article> elements the
    one with the most text (teaser cards are <article>s too), else the articleBody,
    <main> or the body."""
    articles = root.xpath("//article")
    if articles:
        return max(articles, key=lambda el: len(el.text_content()))
    return next((found[0] for xp in _CONTENT_ROOTS[1:] if (found := root.xpath(xp))), root)


# --- html rules ----------------------------------------------------------------------------


def apply_html_rules(
    root: lxml.html.HtmlElement,
    matchers: Iterable[HtmlMatcher],
    *,
    max_share: float,
    default_tz: tzinfo,
    base_url: str | None = None,
    scope: Any = None,
    markup: str = "",
) -> tuple[list[Removal], dict[str, object]]:
    """Remove what each html rule finds (whole elements; their tails stay) and return
    the removals and the captured fields. A rule that would remove more than its share
    of the text of ``scope`` (a page's article element, else the whole document) is
    skipped and logged instead."""
    removals: list[Removal] = []
    captured: dict[str, object] = {}
    scope = root if scope is None else scope
    total = -1  # the scope's text, measured once (before any removal), when first needed
    features = PageFeatures.of(root)
    plain: list[str] = []

    def plain_text() -> str:
        if not plain:
            plain.append(" ".join(root.text_content().split()).lower())
        return plain[0]

    for matcher in matchers:
        if not matcher.may_match(features, markup, plain_text):
            continue
        found = _matches(root, matcher)
        if not found:
            continue
        texts = [" ".join(el.text_content().split()) for el in found]
        # The valve weighs what the rule would take out of the article's own element.
        removed = sum(len(t) for el, t in zip(found, texts, strict=True) if _within(el, scope))
        if total < 0:
            total = max(1, len(" ".join(scope.text_content().split())))
        limit = matcher.max_share if matcher.max_share is not None else max_share
        if removed >= VALVE_MIN_CHARS and removed / total > limit:
            log.warning(
                "rule.valve",
                rule=matcher.rule_id,
                share=round(removed / total, 2),
                limit=limit,
                chars=removed,
            )
            removals.append(Removal(matcher.rule_id, -1, texts[0][:120], skipped=True))
            continue
        values = _captures(found[0], matcher, default_tz, base_url)
        for name, value in values.items():
            captured.setdefault(name, value)
        for element, text in zip(found, texts, strict=True):
            removals.append(
                Removal(matcher.rule_id, -1, text[:120], {k: str(v) for k, v in values.items()})
            )
            element.drop_tree()
            values = {}  # captured once per rule, recorded on the first removal
    return removals, captured


def _within(element: Any, scope: Any) -> bool:
    return element is scope or any(a is scope for a in element.iterancestors())


def _matches(root: lxml.html.HtmlElement, matcher: HtmlMatcher) -> list[Any]:
    """The outermost elements the rule finds (a match inside a match goes with it)."""
    found = [
        el
        for el in matcher.xpath(root)
        if el is not root
        and (matcher.text is None or matcher.text.fullmatch(" ".join(el.text_content().split())))
    ]
    chosen = set(found)
    return [el for el in found if not any(a in chosen for a in el.iterancestors())]


def _captures(
    element: Any, matcher: HtmlMatcher, default_tz: tzinfo, base_url: str | None
) -> dict[str, object]:
    values: dict[str, object] = {}
    for name, source in matcher.captures:
        raw = (
            normalize_line(element.text_content())
            if source == "text"
            else (element.get(source[1:]) or "").strip()
        )
        if not raw:
            continue
        if source in ("@href", "@src") and base_url:
            raw = _join(base_url, raw)
        if name == "published_at":
            moment = parse_captured_time(raw, list(matcher.time_formats), default_tz)
            if moment is not None:
                values[name] = moment
        else:
            values[name] = raw
    return values


# --- the article ---------------------------------------------------------------------------


def _extract_page(root: lxml.html.HtmlElement) -> tuple[list[Block], dict[int, str]] | None:
    """The article of a page by trafilatura, as blocks and paragraph markup; None when
    it finds none (the caller falls back to the page's own structure)."""
    try:
        # fast: without trafilatura's fallback extractors (readability, jusText), which on
        # the public benchmark cost a third of the time for no gain in F1.
        # include_links / include_images stay off: with them trafilatura lost whole
        # articles, and kept captions, on the public benchmark (a page's article HTML
        # keeps its formatting; its lead image is the article's `image`). url=None:
        # nothing of ours needs its URL handling.
        result = trafilatura.bare_extraction(
            root,
            url=None,
            fast=True,
            favor_recall=True,
            include_comments=False,
            include_links=False,
            include_formatting=True,
            include_tables=True,
            with_metadata=False,
        )
    except Exception as exc:  # an extractor bug must not lose the document
        log.warning("extract.failed", error=f"{type(exc).__name__}: {exc}")
        return None
    body = getattr(result, "body", None)
    if body is None or not len(body):
        return None
    blocks, markup = _tei_blocks(body)
    return (blocks, markup) if blocks else None


# trafilatura's output elements → HTML.
_TEI_BLOCK = {"p": "p", "quote": "blockquote", "code": "pre", "item": "li", "row": "p"}
_TEI_RENDER = {
    "#b": "strong",
    "#i": "em",
    "#u": "u",
    "#t": "code",
    "#sub": "sub",
    "#sup": "sup",
    "#del": "del",
}


def _tei_units(body: Any) -> Iterator[Any]:
    """Paragraph-level elements of trafilatura's output, in document order."""
    for child in body:
        if child.tag == "list":
            yield from _tei_units(child)
        elif child.tag == "table":
            yield from child.iter("row")
        else:
            yield child


def _tei_blocks(body: Any) -> tuple[list[Block], dict[int, str]]:
    units = list(_tei_units(body))
    for element in body.iter("lb", "cell"):
        element.tail = (LINE_BREAK if element.tag == "lb" else " ") + (element.tail or "")
    texts = normalize_texts(["".join(unit.itertext()) for unit in units])
    blocks: list[Block] = []
    markup: dict[int, str] = {}
    paragraph = 0
    for unit, lines in zip(units, texts, strict=True):
        if not lines:
            continue
        if unit.tag == "head":
            level = (unit.get("rend") or "h2").lower()
            tag = level if re.fullmatch(r"h[1-6]", level) else "h2"
        else:
            tag = _TEI_BLOCK.get(unit.tag, "p")
        blocks.extend(Block(line, paragraph) for line in lines)
        markup[paragraph] = f"<{tag}>{_tei_inline(unit)}</{tag}>"
        paragraph += 1
    return blocks, markup


def _tei_inline(element: Any) -> str:
    parts = [escape(element.text or "", quote=False)]
    for child in element:
        inner = _tei_inline(child)
        if child.tag == "lb":
            parts.append("<br>")
            parts.append(escape((child.tail or "").removeprefix(LINE_BREAK), quote=False))
            continue
        elif child.tag == "hi" and child.get("rend") in _TEI_RENDER:
            tag = _TEI_RENDER[child.get("rend")]
            parts.append(f"<{tag}>{inner}</{tag}>")
        elif child.tag == "cell":
            parts.append(f"{inner} ")
        else:
            parts.append(inner)
        parts.append(escape(child.tail or "", quote=False))
    return "".join(parts)


# Elements that hold a paragraph's text, and elements that only hold other blocks.
_TEXT_BLOCKS = frozenset(
    [
        "p",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "li",
        "blockquote",
        "pre",
        "figcaption",
        "dt",
        "dd",
        "td",
        "th",
        "caption",
        "address",
        "summary",
    ]
)
_CONTAINERS = frozenset(
    [
        "div",
        "section",
        "article",
        "main",
        "header",
        "footer",
        "ul",
        "ol",
        "dl",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "tr",
        "figure",
        "center",
        "details",
        "aside",
        "nav",
        "form",
        "fieldset",
        "body",
        "html",
        "hgroup",
        "menu",
    ]
)
_BLOCK_LEVEL = _TEXT_BLOCKS | _CONTAINERS | {"hr"}
# Text blocks whose own tag the article's HTML keeps; the others become <p>.
_OWN_MARKUP = frozenset(["p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre"])


@dataclass
class _Unit:
    """A paragraph in the making: a block element, or a run of text and inline markup
    between blocks (bare text, a <div>'s own text, a list item's text before its sublist)."""

    element: Any = None
    pieces: list[Any] = field(default_factory=list)  # for a run: text and inline elements

    def text(self) -> str:
        if self.element is not None:
            return self.element.text_content()
        return "".join(p if isinstance(p, str) else p.text_content() for p in self.pieces)

    def markup(self) -> str:
        if self.element is not None:
            return etree.tostring(self.element, encoding="unicode", method="html", with_tail=False)
        inner = "".join(
            escape(p, quote=False)
            if isinstance(p, str)
            else etree.tostring(p, encoding="unicode", method="html", with_tail=False)
            for p in self.pieces
        )
        return f"<p>{inner}</p>"


def _units(element: Any, out: list[_Unit]) -> None:
    """Split a container into units, in document order."""
    run = _Unit()
    if element.text:
        run.pieces.append(element.text)
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else None
        if tag in _BLOCK_LEVEL:
            if run.pieces:
                out.append(run)
                run = _Unit()
            holds_blocks = any(
                isinstance(d.tag, str) and d.tag in _BLOCK_LEVEL for d in child.iterdescendants()
            )
            if tag in _TEXT_BLOCKS and not holds_blocks:
                out.append(_Unit(element=child))
            elif tag != "hr":
                _units(child, out)
        elif tag is not None:
            run.pieces.append(child)
        if child.tail:
            run.pieces.append(child.tail)
    if run.pieces:
        out.append(run)


def _leaf_blocks(container: Any) -> tuple[list[Block], dict[int, str]]:
    """Blocks of a fragment (or of a page trafilatura found nothing in): every block
    element that holds text, and every run of text between blocks, is a paragraph. Lines
    break only at <br>. Images outside text go with the next paragraph (or the last)."""
    for br in container.iter("br"):
        br.tail = LINE_BREAK + (br.tail or "")
    units: list[_Unit] = []
    _units(container, units)
    texts = normalize_texts([unit.text() for unit in units])
    blocks: list[Block] = []
    markup: dict[int, str] = {}
    pending: list[str] = []  # images of units without text
    paragraph = 0
    for unit, lines in zip(units, texts, strict=True):
        if not lines:
            pending.extend(_images(unit))
            continue
        blocks.extend(Block(line, paragraph) for line in lines)
        markup[paragraph] = "".join(pending) + unit.markup().replace(LINE_BREAK, "")
        pending = []
        paragraph += 1
    if pending and markup:
        markup[paragraph - 1] += "".join(pending)
    return blocks, markup


def _images(unit: _Unit) -> list[str]:
    roots = (
        [unit.element]
        if unit.element is not None
        else [p for p in unit.pieces if not isinstance(p, str)]
    )
    return [
        etree.tostring(image, encoding="unicode", method="html", with_tail=False)
        for root in roots
        for image in root.iter("img")
        if image.get("src")
    ]


# --- metadata ---------------------------------------------------------------------------------


def _first(root: Any, *xpaths: str) -> str | None:
    for xpath in xpaths:
        found = root.xpath(xpath)
        for value in [found] if isinstance(found, str) else found:
            text = normalize_line(str(value))
            if text:
                return text
    return None


def _meta_tags(root: Any) -> dict[str, str]:
    """Every <meta> by property, name and itemprop (lower-case; the first wins): one
    pass instead of an XPath search of the page per field."""
    tags: dict[str, str] = {}
    for element in root.iter("meta"):
        content = element.get("content")
        if not content or not content.strip():
            continue
        for key in ("property", "name", "itemprop"):
            if (name := element.get(key)) is not None:
                tags.setdefault(name.strip().lower(), normalize_line(content))
    return tags


def read_metadata(root: Any, *, base_url: str | None, default_tz: tzinfo) -> Metadata:
    """A page's metadata: meta tags (Open Graph, article:*, Dublin Core, Twitter), then
    JSON-LD (schema.org Article and kin), then the markup (<title>, <time>, rel=author)."""
    tags = _meta_tags(root)

    def meta(*names: str) -> str | None:
        return next((tags[n] for n in names if tags.get(n)), None)

    ld = _json_ld(root)
    canonical = _first(root, "//link[@rel='canonical']/@href") or meta("og:url")
    if canonical and base_url:
        canonical = urljoin(base_url, canonical)
    published = (
        meta(
            "article:published_time",
            "datepublished",
            "pubdate",
            "date",
            "dc.date",
            "dc.date.issued",
        )
        or _ld_text(ld, "datePublished")
        or _first(root, "//article//time[@datetime]/@datetime", "//time[@datetime]/@datetime")
    )
    updated = meta("article:modified_time", "og:updated_time", "datemodified") or _ld_text(
        ld, "dateModified"
    )
    image = meta("og:image", "og:image:url", "twitter:image") or _ld_image(ld)
    url = base_url or canonical
    return Metadata(
        title=meta("og:title", "twitter:title")
        or _ld_text(ld, "headline")
        or _first(root, "//title/text()", "normalize-space(//h1)"),
        author=meta("author", "article:author", "dc.creator")
        or _ld_author(ld)
        or _first(root, "normalize-space(//*[@rel='author'])"),
        published_at=parse_timestamp(published, default_tz) if published else None,
        updated_at=parse_timestamp(updated, default_tz) if updated else None,
        url=base_url,
        canonical_url=absolute_url(canonical),
        site=meta("og:site_name", "application-name")
        or _ld_publisher(ld)
        or (urlsplit(url).hostname if url else None),
        language=_first(root, "/html/@lang", "//meta[@http-equiv='content-language']/@content")
        or meta("og:locale"),
        summary=meta("description", "og:description"),
        image=absolute_url(urljoin(base_url or "", image)) if image else None,
    )


def _json_ld(root: Any) -> dict[str, Any]:
    """The page's schema.org article object from JSON-LD, if any (first found)."""
    for script in root.xpath("//script[@type='application/ld+json']"):
        try:
            data = json.loads(script.text or "")
        except ValueError:
            continue
        for item in _ld_items(data):
            kinds = item.get("@type")
            kinds = kinds if isinstance(kinds, list) else [kinds]
            if any(isinstance(k, str) and k.lower() in _ARTICLE_TYPES for k in kinds):
                return item
    return {}


def _ld_items(data: Any) -> Iterator[dict[str, Any]]:
    if isinstance(data, list):
        for item in data:
            yield from _ld_items(item)
    elif isinstance(data, dict):
        yield data
        yield from _ld_items(data.get("@graph", []))


def _ld_text(ld: dict[str, Any], key: str) -> str | None:
    value = ld.get(key)
    return normalize_line(value) or None if isinstance(value, str) else None


def _ld_author(ld: dict[str, Any]) -> str | None:
    authors = ld.get("author")
    authors = authors if isinstance(authors, list) else [authors]
    names = [a.get("name") if isinstance(a, dict) else a for a in authors]
    names = [normalize_line(n) for n in names if isinstance(n, str) and n.strip()]
    return ", ".join(names) or None


def _ld_publisher(ld: dict[str, Any]) -> str | None:
    publisher = ld.get("publisher")
    name = publisher.get("name") if isinstance(publisher, dict) else None
    return normalize_line(name) or None if isinstance(name, str) else None


def _ld_image(ld: dict[str, Any]) -> str | None:
    image = ld.get("image")
    if isinstance(image, list):
        image = image[0] if image else None
    if isinstance(image, dict):
        image = image.get("url")
    return image if isinstance(image, str) and image.strip() else None


def parse_timestamp(value: str, default_tz: tzinfo) -> datetime | None:
    """An ISO 8601 time from page metadata; a time without a zone is taken to be in
    ``default_tz``. Unparseable values give None (metadata is a hint, not a contract)."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=default_tz)

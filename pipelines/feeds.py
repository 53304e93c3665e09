"""Parse syndication feeds (RSS 0.9x/1.0/2.0, Atom, JSON Feed) into typed values, and give
each entry a stable identity and a content fingerprint.

XML feeds go through feedparser, but the bytes are decoded here first: feedparser's own
charset order follows RFC 3023 (HTTP header, then XML declaration, BOM last; ``text/xml``
without a charset means US-ASCII), while real feeds need BOM > HTTP header > XML
declaration, plus a repair for the two usual mislabels (UTF-8 declared as ISO-8859-1 and the
reverse). feedparser then gets UTF-8 bytes labelled as such.

Safety: feedparser drops entity declarations that expand other entities or name external
resources, and expat (>= 2.4) refuses amplification; but when expat refuses, feedparser
re-parses with its loose SGML parser, which expands the literal entities it kept without any
limit (a 60 KB document became 400 MB). The DOCTYPE is therefore cut down here before
feedparser sees it: only literal entities whose total expansion is small survive.
"""

from __future__ import annotations

import codecs
import hashlib
import html
import io
import json
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit, urlunsplit

import feedparser
import lxml.html
from lxml import etree

from pipelines.text import normalize_line, word_count

FeedKind = Literal["rss", "atom", "rdf", "json"]
KeyMode = Literal["guid", "link", "hash"]

# Share of one fetch's entries that may lack or share a key before the feed falls back to
# a weaker key (a strict "more than", so exactly 5 % keeps the mode).
MAX_BAD_KEY_PERCENT = 5
# Characters that the DOCTYPE's entities may add to the document, all references counted.
MAX_ENTITY_EXPANSION = 64 * 1024

_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MODES: tuple[KeyMode, ...] = ("guid", "link", "hash")


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One feed item as the feed tells it. Times are aware UTC datetimes; HTML is
    feedparser-sanitized (JSON Feed HTML is passed through as given)."""

    guid: str | None
    link: str | None
    title: str | None
    author: str | None
    published_at: datetime | None
    updated_at: datetime | None
    content_html: str | None  # full content: content:encoded, Atom content, content_html/text
    summary_html: str | None  # description / summary
    categories: tuple[str, ...] = ()

    @property
    def best_html(self) -> str | None:
        """The fullest HTML the feed carries for this entry."""
        return self.content_html or self.summary_html


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed feed: its entries in document order and what the scheduler needs."""

    kind: FeedKind  # "rss" covers 0.9x and 2.0; "rdf" is RSS 1.0
    title: str | None
    site_url: str | None
    language: str | None
    entries: tuple[FeedEntry, ...]
    ttl_minutes: int | None = None
    skip_hours: frozenset[int] = frozenset()  # 0-23, GMT
    skip_days: frozenset[str] = frozenset()  # "Monday"…"Sunday"
    problem: str | None = None  # the parser's complaint about an ill-formed feed that parsed
    encoding: str | None = None


class FeedParseError(ValueError):
    """The document yields no feed; the message says why (the parser's own words)."""


@dataclass(frozen=True, slots=True)
class EntryKeys:
    """Identity keys of a fetch's entries, one per entry in the same order."""

    keys: tuple[str, ...]
    mode: KeyMode
    reason: str | None  # why a weaker mode than the preferred one was chosen


# ---------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------


def parse_feed(
    body: bytes, *, content_type: str | None = None, url: str | None = None
) -> ParsedFeed:
    """Parse an RSS, Atom or JSON Feed document.

    ``content_type`` is the HTTP Content-Type (its charset counts after a BOM and before the
    XML declaration); ``url`` is where the feed was fetched, used to resolve relative links.
    Raises FeedParseError when the document yields no feed (or entries are expected and it
    yields none); an ill-formed feed that still yields entries comes back with ``problem``.
    """
    if not body or not body.strip():
        raise FeedParseError("empty document")
    media_type, header_charset = _parse_content_type(content_type)
    text, encoding = decode_feed_bytes(body, header_charset=header_charset)
    text = text.lstrip("\ufeff \t\r\n")
    if text.startswith(("{", "[")):
        return _parse_json_text(text, media_type=media_type, url=url, encoding=encoding)
    if media_type in ("application/feed+json", "application/json"):
        raise FeedParseError(f"served as {media_type} but the body is not JSON")
    return _parse_xml_text(text, url=url, encoding=encoding)


def decode_feed_bytes(body: bytes, *, header_charset: str | None = None) -> tuple[str, str]:
    """Decode a feed document; returns the text and the encoding used.

    Order: a BOM, then the HTTP charset, then the XML declaration, then UTF-8. Mislabels are
    repaired: a single-byte charset over bytes that are valid UTF-8 (which is what turns
    "é" into "Ã©" and "’" into "â€™") is read as UTF-8; UTF-8 over bytes that are not
    UTF-8 is read as windows-1252. ISO-8859-1 and US-ASCII are read as windows-1252, a
    superset that gives its meaning to 0x80-0x9F (curly quotes, not control codes).
    The encoding is returned as a charset label ("windows-1252", not Python's "cp1252").
    """
    text, codec = _decode(body, header_charset)
    return text, _charset_label(codec)


def _decode(body: bytes, header_charset: str | None) -> tuple[str, str]:
    for bom, bom_codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(bom_codec, errors="replace"), bom_codec
    declared = _codec_name(header_charset) or _codec_name(_xml_declared_charset(body))
    if declared in ("utf-16", "utf-32"):  # no BOM: the byte order must come from the bytes
        declared = _sniff_utf16(body) or None
    if declared is None or declared == "utf-8":
        try:
            return body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            return _decode_single_byte(body, "cp1252")
    if declared in _SINGLE_BYTE_CODECS or declared.startswith(_SINGLE_BYTE_PREFIXES):
        if _is_multibyte_utf8(body):
            return body.decode("utf-8"), "utf-8"
        return _decode_single_byte(body, declared)
    try:
        return body.decode(declared), declared
    except UnicodeDecodeError:
        try:
            return body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            return _decode_single_byte(body, "cp1252")


_BOMS = (
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same bytes
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
_SINGLE_BYTE_CODECS = frozenset({"ascii", "latin-1", "iso8859-1", "cp1252"})
_SINGLE_BYTE_PREFIXES = ("iso8859-", "cp125", "koi8-", "mac-", "cp437", "cp850", "cp866")
_XML_DECL_CHARSET = re.compile(
    rb"""^\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z][\w.:-]*)["']"""
)
_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?([^\s;"']+)""", re.IGNORECASE)


def _charset_label(codec: str) -> str:
    if match := re.fullmatch(r"cp(125\d)", codec):
        return f"windows-{match.group(1)}"
    if match := re.fullmatch(r"iso8859-(\d+)", codec):
        return f"iso-8859-{match.group(1)}"
    return {"latin-1": "iso-8859-1", "ascii": "us-ascii"}.get(codec, codec)


def _parse_content_type(content_type: str | None) -> tuple[str, str | None]:
    if not content_type:
        return "", None
    media_type = content_type.split(";", 1)[0].strip().lower()
    match = _CHARSET_PARAM.search(content_type)
    return media_type, match.group(1) if match else None


def _codec_name(label: str | None) -> str | None:
    """Python's canonical codec name for a charset label, or None for an unknown one."""
    if not label:
        return None
    label = label.strip().lower()
    if label in ("gb2312", "gbk"):  # supersets, as browsers do
        label = "gb18030"
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return name


def _xml_declared_charset(body: bytes) -> str | None:
    head = body[:400]
    if head.startswith((b"\x00<\x00?", b"<\x00?\x00")):  # UTF-16 without a BOM
        codec = "utf-16-be" if head[0] == 0 else "utf-16-le"
        head = head.decode(codec, errors="ignore").encode("ascii", errors="ignore")
    match = _XML_DECL_CHARSET.match(head)
    return match.group(1).decode("ascii") if match else None


def _sniff_utf16(body: bytes) -> str:
    head = body[:4]
    if head.startswith(b"\x00\x00\x00<"):
        return "utf-32-be"
    if head.startswith(b"<\x00\x00\x00"):
        return "utf-32-le"
    if head.startswith(b"\x00<"):
        return "utf-16-be"
    if head.startswith(b"<\x00"):
        return "utf-16-le"
    return ""


def _is_multibyte_utf8(body: bytes) -> bool:
    """Bytes that are valid UTF-8 and not plain ASCII: read with a single-byte charset they
    would turn into mojibake, and legacy text is almost never valid UTF-8 by accident."""
    if body.isascii():
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decode_single_byte(body: bytes, codec: str) -> tuple[str, str]:
    if codec in ("ascii", "latin-1", "iso8859-1"):
        codec = "cp1252"
    try:
        return body.decode(codec), codec
    except UnicodeDecodeError:
        # cp1252 leaves five bytes undefined; ISO-8859-1 maps every byte.
        return body.decode("latin-1"), "latin-1"


# --- XML --------------------------------------------------------------------------------

# Characters that XML 1.0 forbids: stray control codes only make expat give up.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML_DECL = re.compile(r"^<\?xml\b[^>]{0,300}?\?>")
_DECL_ENCODING = re.compile(r"""encoding\s*=\s*["'][^"']*["']""")
# Whitespace, processing instructions and comments, then a DOCTYPE. Each alternative can
# match in one way only (a PI or comment ends at its first closer), so a failed match costs
# linear time.
_PROLOG_DOCTYPE = re.compile(
    r"(?:\s|<\?(?:[^?]|\?(?!>))*\?>|<!--(?:[^-]|-(?!->))*-->)*<!DOCTYPE", re.IGNORECASE
)
# A whole DOCTYPE declaration. Every alternative starts with a different character, so the
# regex never has two ways to match and a failure costs linear time.
_DOCTYPE_DECL = re.compile(
    r"""<!DOCTYPE(?:[^\[>"']|"[^"]*"|'[^']*')*"""
    r"""(?:\[(?:[^\]"'<]|"[^"]*"|'[^']*'|<!--(?:[^-]|-(?!->))*-->|<(?!!--))*\])?\s*>""",
    re.IGNORECASE,
)
_LITERAL_ENTITY = re.compile(
    r"""<!ENTITY\s+([A-Za-z_][\w.-]*)\s+(?:"([^"]*)"|'([^']*)')\s*>""", re.DOTALL
)
_SAFE_ENTITY_VALUE = re.compile(r"&#(?:\d{1,7}|x[0-9A-Fa-f]{1,6});|[^&%<\"]*")
_EXTERNAL_ID = re.compile(
    r"""\s*(?:PUBLIC\s+(?:"[^"]*"|'[^']*')\s+(?:"[^"]*"|'[^']*')|SYSTEM\s+(?:"[^"]*"|'[^']*'))"""
)


def _parse_xml_text(text: str, *, url: str | None, encoding: str) -> ParsedFeed:
    text = _XML_ILLEGAL.sub("", text)
    text, doctype_note = _guard_doctype(text)
    decl = _XML_DECL.match(text)
    if decl:  # the text is now UTF-8, whatever the declaration said
        text = _DECL_ENCODING.sub('encoding="utf-8"', decl.group(0), count=1) + text[decl.end() :]
    headers = {"content-type": "application/xml; charset=utf-8"}
    if url:
        headers["content-location"] = url
    try:
        # A stream, never a str/bytes: feedparser treats those as a URL or file name to open.
        result = feedparser.parse(io.BytesIO(text.encode("utf-8")), response_headers=headers)
    except Exception as exc:  # hostile input must end as a feed error, not a crash
        raise FeedParseError(f"feed parser failed: {type(exc).__name__}: {exc}") from exc

    parser_message = _bozo_message(result)
    problem = "; ".join(p for p in (doctype_note, parser_message) if p) or None
    version = str(result.get("version") or "")
    if not result.entries:
        if not version:
            why = f" ({parser_message})" if parser_message else ""
            raise FeedParseError(f"not a feed: no RSS, RDF or Atom root element{why}")
        if parser_message:
            raise FeedParseError(parser_message)
    kind = _kind_of(version)
    feed = result.feed
    feed_author = _author_of(feed) if kind == "atom" else None  # Atom entries inherit it
    entries = tuple(
        _entry_from_feedparser(e, kind=kind, feed_author=feed_author, base_url=url)
        for e in result.entries
    )
    skip_hours, skip_days = _skip_hours_days(text)
    return ParsedFeed(
        kind=kind,
        title=_clean(feed.get("title")),
        site_url=_clean(feed.get("link")),
        language=_clean(feed.get("language")),
        entries=entries,
        ttl_minutes=_positive_int(feed.get("ttl")),
        skip_hours=skip_hours,
        skip_days=skip_days,
        problem=problem,
        encoding=encoding,
    )


def _guard_doctype(text: str) -> tuple[str, str | None]:
    """Cut the DOCTYPE down to literal entities with a bounded total expansion.

    Returns the text and a note when declarations were dropped. The kept DOCTYPE puts each
    entity on its own line, the shape feedparser's own DOCTYPE handling recognises.
    """
    prolog = _PROLOG_DOCTYPE.match(text)
    if prolog is None:  # none, or not in the prolog (then expat rejects it anyway)
        return text, None
    start = prolog.end() - len("<!DOCTYPE")
    end = _doctype_end(text, start)
    if end < 0:  # unterminated: nothing after it can be a feed
        return text[:start], "unterminated DOCTYPE removed"
    decl = text[start:end]
    name_match = re.match(r"<!DOCTYPE\s+([^\s\[>]+)", decl, re.IGNORECASE)
    name = name_match.group(1) if name_match else "rss"
    rest = decl[name_match.end() :] if name_match else ""
    external = _EXTERNAL_ID.match(rest)
    external_id = external.group(0).strip() if external else ""
    subset_open = decl.find("[")
    subset = decl[subset_open + 1 : decl.rfind("]")] if subset_open >= 0 else ""

    kept: dict[str, str] = {}
    for match in _LITERAL_ENTITY.finditer(subset):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        if _SAFE_ENTITY_VALUE.fullmatch(value) and match.group(1) not in kept:
            kept[match.group(1)] = value
    declared = subset.count("<!ENTITY")
    expansion = sum(len(v) * text.count(f"&{k};", end) for k, v in kept.items())
    note = None
    if expansion > MAX_ENTITY_EXPANSION:
        note = f"DOCTYPE entities removed: they would add {expansion} characters"
        kept = {}
    elif declared > len(kept):
        note = (
            f"{declared - len(kept)} DOCTYPE entity declaration(s) removed "
            "(external, parameter or nested entities)"
        )
    head = f"<!DOCTYPE {name}" + (f" {external_id}" if external_id else "")
    if kept:
        lines = "\n".join(f'<!ENTITY {k} "{v}">' for k, v in kept.items())
        head += f" [\n{lines}\n]"
    return f"{text[:start]}\n{head}>{text[end:]}", note


def _doctype_end(text: str, start: int) -> int:
    """Index just past the DOCTYPE's closing ``>`` (quoted strings, comments and the
    internal subset skipped); -1 when it never closes."""
    match = _DOCTYPE_DECL.match(text, start)
    return match.end() if match else -1


def _bozo_message(result: Mapping[str, Any]) -> str | None:
    if not result.get("bozo"):
        return None
    exc = result.get("bozo_exception")
    # The bytes are transcoded to UTF-8 before parsing, so an encoding override is not a
    # problem of the feed (and should not occur).
    if isinstance(exc, feedparser.CharacterEncodingOverride):
        return None
    if exc is None:
        return "ill-formed feed"
    return str(exc) or type(exc).__name__


def _kind_of(version: str) -> FeedKind:
    if version.startswith("atom"):
        return "atom"
    if version == "rss10":
        return "rdf"
    return "rss"  # rss090…rss094, rss20, and the rare cdf / unknown


def _entry_from_feedparser(
    e: Mapping[str, Any], *, kind: FeedKind, feed_author: str | None, base_url: str | None
) -> FeedEntry:
    # FeedBurner's <link> is a redirecting tracker; origLink is the article itself.
    link = _clean(e.get("feedburner_origlink")) or _clean(e.get("link"))
    if link and base_url:
        link = urljoin(base_url, link)
    # dict.get: FeedParserDict would answer "updated_parsed" with the published time.
    published = _struct_time_utc(dict.get(e, "published_parsed"))
    updated = _struct_time_utc(dict.get(e, "updated_parsed"))
    if published is None and kind in ("rss", "rdf"):
        published = updated  # dc:date, which feedparser files as "updated", is the pub date
    return FeedEntry(
        guid=_clean(e.get("id")),
        link=link,
        title=_clean(e.get("title")),
        author=_author_of(e) or feed_author,
        published_at=published,
        updated_at=updated,
        content_html=_content_html(e.get("content")),
        # feedparser copies content into "summary" when there is no summary; only a
        # summary_detail means the feed had one.
        summary_html=_detail_html(e.get("summary_detail")),
        categories=_unique(
            (t.get("term") or t.get("label") or "") for t in e.get("tags") or () if t
        ),
    )


def _author_of(node: Mapping[str, Any]) -> str | None:
    names = [_clean(a.get("name")) for a in node.get("authors") or () if isinstance(a, Mapping)]
    named = [n for n in names if n]
    if named:
        return ", ".join(dict.fromkeys(named))
    detail = node.get("author_detail") or {}
    return _clean(detail.get("name")) or _clean(node.get("author"))


def _content_html(contents: Iterable[Mapping[str, Any]] | None) -> str | None:
    plain = None
    for item in contents or ():
        value = _detail_html(item)
        if value and "html" in str(item.get("type") or ""):
            return value
        plain = plain or value
    return plain


def _detail_html(detail: Mapping[str, Any] | None) -> str | None:
    """A feedparser text construct as HTML: plain text is escaped into paragraphs."""
    if not detail:
        return None
    value = detail.get("value")
    if not isinstance(value, str) or not value.strip():
        return None
    if str(detail.get("type") or "").startswith("text/plain"):
        return _text_to_html(value)
    return value.strip()


def _text_to_html(text: str) -> str | None:
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs if p) or None


def _struct_time_utc(value: time.struct_time | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime(*value[:5], min(value[5], 59), tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None  # feedparser passes impossible dates through; they tell us nothing


def _positive_int(value: object) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


_HIDDEN_OPEN = re.compile(r"<!\[CDATA\[|<!--")
_SKIP_OPEN = {
    "hour": re.compile(r"<(?:\w+:)?skipHours\b[^>]*>", re.IGNORECASE),
    "day": re.compile(r"<(?:\w+:)?skipDays\b[^>]*>", re.IGNORECASE),
}
_SKIP_CLOSE = {
    "hour": re.compile(r"</(?:\w+:)?skipHours\s*>", re.IGNORECASE),
    "day": re.compile(r"</(?:\w+:)?skipDays\s*>", re.IGNORECASE),
}
_SKIP_VALUE = {
    "hour": re.compile(r"<(?:\w+:)?hour\b[^>]*>\s*(\d{1,2})\s*<", re.IGNORECASE),
    "day": re.compile(r"<(?:\w+:)?day\b[^>]*>\s*([A-Za-z]+)\s*<", re.IGNORECASE),
}


def _skip_hours_days(text: str) -> tuple[frozenset[int], frozenset[str]]:
    """RSS skipHours/skipDays, which feedparser does not keep (it only remembers the last
    <hour>). Read from the raw text with CDATA sections and comments left out."""
    lowered = text.lower()
    if "skiphours" not in lowered and "skipdays" not in lowered:
        return frozenset(), frozenset()
    visible = _without_hidden_markup(text)
    hours = {int(v) % 24 for v in _skip_values(visible, "hour") if int(v) <= 24}  # 24 = 0
    days = {v.capitalize() for v in _skip_values(visible, "day")} & set(_WEEKDAYS)
    return frozenset(hours), frozenset(days)


def _without_hidden_markup(text: str) -> str:
    """The text without CDATA sections and comments. A loop with str.find, not one regex:
    a regex would rescan to the end for every unclosed opener (quadratic time)."""
    parts: list[str] = []
    pos = 0
    while opener := _HIDDEN_OPEN.search(text, pos):
        parts.append(text[pos : opener.start()])
        closer = "]]>" if opener.group(0).startswith("<![") else "-->"
        end = text.find(closer, opener.end())
        if end < 0:
            return "".join(parts)
        pos = end + len(closer)
    parts.append(text[pos:])
    return "".join(parts)


def _skip_values(text: str, what: str) -> list[str]:
    """The values in the first <skipHours>/<skipDays> element."""
    opener = _SKIP_OPEN[what].search(text)
    if opener is None:
        return []
    closer = _SKIP_CLOSE[what].search(text, opener.end())
    if closer is None:
        return []
    return _SKIP_VALUE[what].findall(text, opener.end(), closer.start())


# --- JSON Feed ----------------------------------------------------------------------------

_JSONFEED_VERSION_PREFIX = "https://jsonfeed.org/version/"


def _parse_json_text(text: str, *, media_type: str, url: str | None, encoding: str) -> ParsedFeed:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FeedParseError(f"invalid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise FeedParseError("JSON document is not an object, so not a JSON Feed")
    version = doc.get("version")
    is_jsonfeed = isinstance(version, str) and version.startswith(_JSONFEED_VERSION_PREFIX)
    served_as_json = media_type in ("application/feed+json", "application/json")
    if not is_jsonfeed and not (served_as_json and isinstance(doc.get("items"), list)):
        raise FeedParseError(f"not a JSON Feed: version is {version!r}")
    items = doc.get("items")
    if not isinstance(items, list):
        raise FeedParseError("JSON Feed has no items list")

    base = url or _json_str(doc.get("feed_url"))
    feed_author = _json_author(doc)
    entries = [
        _entry_from_json(item, base=base, feed_author=feed_author)
        for item in items
        if isinstance(item, dict)
    ]
    skipped = len(items) - len(entries)
    problem = f"{skipped} item(s) are not JSON objects and were skipped" if skipped else None
    if items and not entries:
        raise FeedParseError(problem or "no usable items")
    site_url = _json_str(doc.get("home_page_url"))
    return ParsedFeed(
        kind="json",
        title=_json_str(doc.get("title")),
        site_url=urljoin(base, site_url) if site_url and base else site_url,
        language=_json_str(doc.get("language")),
        entries=tuple(entries),
        problem=problem,
        encoding=encoding,
    )


def _entry_from_json(
    item: Mapping[str, Any], *, base: str | None, feed_author: str | None
) -> FeedEntry:
    link = _json_str(item.get("url")) or _json_str(item.get("external_url"))
    if link and base:
        link = urljoin(base, link)
    content = _json_str(item.get("content_html"))
    if content is None and (text := _json_str(item.get("content_text"))):
        content = _text_to_html(text)
    summary = _json_str(item.get("summary"))
    tags = item.get("tags")
    return FeedEntry(
        guid=_json_str(item.get("id")),
        link=link,
        title=_json_str(item.get("title")),
        author=_json_author(item) or feed_author,
        published_at=_iso_utc(item.get("date_published")),
        updated_at=_iso_utc(item.get("date_modified")),
        content_html=content,
        summary_html=_text_to_html(summary) if summary else None,  # plain text by the spec
        categories=_unique(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
    )


def _json_str(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None  # ids should be strings; some feeds write numbers
    return _clean(str(value))


def _json_author(node: Mapping[str, Any]) -> str | None:
    """JSON Feed 1.1 ``authors`` (a list), else 1.0 ``author`` (an object)."""
    authors = node.get("authors")
    if not isinstance(authors, list):
        authors = [node.get("author")]
    names = [_json_str(a.get("name")) for a in authors if isinstance(a, dict)]
    named = [n for n in names if n]
    return ", ".join(dict.fromkeys(named)) if named else None


def _iso_utc(value: object) -> datetime | None:
    """An RFC 3339 time (RFC 822 accepted too) as aware UTC; naive times are taken as UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None  # e.g. year 1 with a positive offset


def _clean(value: object) -> str | None:
    """Stripped text, or None for a missing or blank value."""
    if not isinstance(value, str):
        return None
    return value.strip() or None


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    cleaned = (" ".join(v.split()) for v in values)
    return tuple(dict.fromkeys(v for v in cleaned if v))


# ---------------------------------------------------------------------------------------
# Identity, change and teasers
# ---------------------------------------------------------------------------------------


def normalize_guid(value: str) -> str:
    """A guid as compared across fetches: whitespace stripped and collapsed; for an http(s)
    URL also the scheme and host lower-cased. The fragment stays: a guid is an opaque
    identifier, and comment feeds tell their items apart by it ("…/post/#comment-12")."""
    value = " ".join(value.split())
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return urlunsplit(
            (parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, parts.fragment)
        )
    return value


def entry_keys(feed: ParsedFeed, *, preferred: KeyMode = "guid") -> EntryKeys:
    """Identity keys for a fetch's entries.

    Starts at ``preferred`` (a caller keeps a weaker mode it chose before) and falls from
    guid to link to hash when more than 5 % of the entries lack that key or share it with
    another entry. Keys carry their kind as a prefix ("guid:…", "link:…", "hash:…"); in a
    mode that tolerated a few missing values, those entries get the next kind's key.
    """
    entries = feed.entries
    reasons: list[str] = []
    for mode in _MODES[_MODES.index(preferred) :]:
        if mode == "hash":
            break
        values = [_raw_key(e, mode) for e in entries]
        problem = _key_problem(values, mode)
        if problem is None:
            keys = [
                f"{mode}:{v}" if v else _fallback_key(e, mode)
                for e, v in zip(entries, values, strict=True)
            ]
            return EntryKeys(tuple(keys), mode, "; ".join(reasons) or None)
        reasons.append(problem)
    return EntryKeys(_hash_keys(entries), "hash", "; ".join(reasons) or None)


def keys_in_mode(feed: ParsedFeed, mode: KeyMode) -> tuple[str, ...]:
    """The entries' keys of one kind, whatever their quality (to look entries up by the
    kind a feed used before it switched)."""
    if mode == "hash":
        return _hash_keys(feed.entries)
    return tuple(
        f"{mode}:{v}" if (v := _raw_key(e, mode)) else _fallback_key(e, mode) for e in feed.entries
    )


def _raw_key(entry: FeedEntry, mode: KeyMode) -> str | None:
    value = entry.guid if mode == "guid" else entry.link
    return (normalize_guid(value) or None) if value else None


def _key_problem(values: list[str | None], mode: KeyMode) -> str | None:
    """Why these keys are too weak (more than 5 % lack one or share one), else None."""
    total = len(values)
    counts = Counter(v for v in values if v)
    lacking = sum(1 for v in values if not v)
    sharing = sum(n for n in counts.values() if n > 1)
    bad = lacking + sharing
    if bad * 100 <= MAX_BAD_KEY_PERCENT * total:
        return None
    share = f"{bad / total:.0%} of entries"
    if lacking and sharing:
        return f"{share} lack or share a {mode} ({lacking} lack one, {sharing} share one)"
    if lacking:
        return f"{share} lack a {mode}"
    return f"{share} share a {mode} with another entry"


def _fallback_key(entry: FeedEntry, mode: KeyMode) -> str:
    if mode == "guid" and (link := _raw_key(entry, "link")):
        return f"link:{link}"
    return _hash_keys((entry,))[0]


def _hash_keys(entries: tuple[FeedEntry, ...] | list[FeedEntry]) -> tuple[str, ...]:
    """sha256 of title and published time; entries that collide are told apart by their
    link, then their content, then (last resort) their order."""
    parts = [
        [normalize_line(e.title or ""), e.published_at.isoformat() if e.published_at else ""]
        for e in entries
    ]
    keys = [_digest(p) for p in parts]
    extras: tuple[Callable[[FeedEntry], str], ...] = (
        lambda e: normalize_guid(e.link) if e.link else "",
        content_fingerprint,
    )
    for extra in extras:
        colliding = {k for k, n in Counter(keys).items() if n > 1}
        if not colliding:
            break
        for i, entry in enumerate(entries):
            if keys[i] in colliding:
                parts[i].append(extra(entry))
                keys[i] = _digest(parts[i])
    seen: Counter[str] = Counter()
    for i, key in enumerate(list(keys)):
        seen[key] += 1
        if seen[key] > 1:
            keys[i] = _digest([*parts[i], f"#{seen[key]}"])
    return tuple(f"hash:{k}" for k in keys)


def _digest(parts: list[str]) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def content_fingerprint(entry: FeedEntry) -> str:
    """32 hex chars over the title and the plain text of ``best_html`` with whitespace
    collapsed: an edit changes it, re-serialized markup (spacing, entities, quoting) does
    not. Widgets that change on their own (comment counts, FeedBurner flares) are left out."""
    title = normalize_line(entry.title or "")
    text = " ".join(_html_blocks(entry.best_html or ""))
    payload = f"{title}\n{normalize_line(text)}".encode()
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


_TAIL_PHRASE = (
    r"(?:continue reading|continues? reading|read more|read the rest|keep reading"
    r"|read the full (?:article|story|post)|read full (?:article|story|post))"
)
# A phrase that closes the text ("… Continue reading →", "Read more »"), or opens the last
# sentence and is followed by a short title ("… here. Read more: Title of the post").
_STRONG_TAIL = re.compile(
    rf"(?:\b{_TAIL_PHRASE}[\W_]*$|(?:^|[.!?…:]\s+){_TAIL_PHRASE}\b.{{0,120}}$"
    r"|\[\s*(?:…|\.\.\.)\s*\][\W_]*$)",
    re.IGNORECASE,
)
_TAIL_CHARS = 300
_WEAK_TAIL = re.compile(r"(?:…|\.\.\.)[\s\"'”’)\]]*$")
_POST_FOOTER = re.compile(r"^The post .+ appeared first on .+$", re.DOTALL)
_MORE_LINK_CLASSES = frozenset({"more-link", "read-more", "readmore"})


def is_teaser(entry: FeedEntry, *, max_words: int = 120) -> bool:
    """Whether the feed carries only a teaser, so the article page must be fetched.

    True for an explicit "continue reading" / "read more" / "[…]" tail or an ``a.more-link``;
    False when there is content substantially longer than a teaser (twice ``max_words``);
    True for a text that ends in "…", or a summary-only entry under ``max_words`` words.
    """
    markup = entry.best_html
    if not markup or not markup.strip():
        return True  # nothing to read in the feed
    root = _html_root(markup)
    if root is None:
        return True
    if any(_MORE_LINK_CLASSES & set((a.get("class") or "").split()) for a in root.iter("a")):
        return True
    blocks = _html_blocks(markup, root=root)
    while blocks and _POST_FOOTER.match(blocks[-1]):
        blocks.pop()  # WordPress' "The post … appeared first on …" after the excerpt
    text = " ".join(blocks)
    words = word_count(text)
    # A tail is at the end: looking only there also bounds the regexes' work.
    if _STRONG_TAIL.search(blocks[-1][-_TAIL_CHARS:] if blocks else ""):
        return True
    if entry.content_html and words >= 2 * max_words:
        return False
    if _WEAK_TAIL.search(text[-_TAIL_CHARS:]):
        return True
    return entry.content_html is None and words < max_words


_BLOCK_TAGS = frozenset(
    {"address", "article", "aside", "blockquote", "br", "dd", "details", "div", "dl", "dt",
     "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
     "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "td", "th",
     "tr", "ul"}
)  # fmt: skip
_SKIPPED_TAGS = frozenset({"script", "style", "template", "noscript"})
# Blocks that change by themselves between fetches (comment counts, share counters).
_VOLATILE_CLASS_PREFIXES = ("feedflare", "wpdiscuz", "wpd-", "sharedaddy", "jp-relatedposts")


def _html_root(markup: str) -> etree._Element | None:
    try:
        return lxml.html.fragment_fromstring(markup, create_parent="div")
    except (etree.ParserError, ValueError):
        return None


def _html_blocks(markup: str, *, root: etree._Element | None = None) -> list[str]:
    """Plain text of an HTML fragment, one string per block element (whitespace collapsed,
    empty blocks dropped), volatile widgets and scripts left out."""
    if root is None:
        if not markup.strip():
            return []
        root = _html_root(markup)
        if root is None:
            return []
    blocks: list[str] = []
    current: list[str] = []
    skipping = 0  # depth inside a skipped element

    def flush() -> None:
        line = " ".join("".join(current).split())
        if line:
            blocks.append(line)
        current.clear()

    for event, el in etree.iterwalk(root, events=("start", "end", "comment", "pi")):
        if event in ("comment", "pi"):  # one event each; only their tail is text
            if not skipping:
                current.append(el.tail or "")
            continue
        tag = el.tag if isinstance(el.tag, str) else None
        skipped = tag is None or tag in _SKIPPED_TAGS or _is_volatile(el)
        if event == "start":
            if skipped:
                skipping += 1
            elif not skipping:
                if tag in _BLOCK_TAGS:
                    flush()
                current.append(el.text or "")
            continue
        if skipped:
            skipping -= 1
        elif not skipping and tag in _BLOCK_TAGS:
            flush()
        if not skipping and el is not root:
            current.append(el.tail or "")
    flush()
    return [unicodedata.normalize("NFC", b) for b in blocks]


def _is_volatile(el: etree._Element) -> bool:
    names = f"{el.get('class') or ''} {el.get('id') or ''}".split()
    return any(n.startswith(_VOLATILE_CLASS_PREFIXES) for n in names)

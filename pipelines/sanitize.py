"""The article's HTML: paragraph markup joined and passed through an allow-list sanitizer
(nh3, the Rust ammonia library): no script, style, iframe, event handler, style
attribute or ``javascript:`` URL survives; links are already absolute (made so when the
document was parsed) and get rel="noopener noreferrer nofollow"."""

from __future__ import annotations

import html
from collections.abc import Iterable

import nh3

ALLOWED_TAGS = {
    "p",
    "br",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "blockquote",
    "pre",
    "code",
    "em",
    "strong",
    "b",
    "i",
    "u",
    "s",
    "del",
    "sub",
    "sup",
    "a",
    "img",
    "figure",
    "figcaption",
    "dl",
    "dt",
    "dd",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "hr",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
URL_SCHEMES = {"http", "https", "mailto"}
# Marks a list item's markup as one of an ordered list (<ol>), for the grouping below.
ORDERED_ITEM = "\ue002"


def sanitize(markup: str) -> str:
    return nh3.clean(
        markup,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def paragraphs_html(paragraphs: Iterable[tuple[str, str | None]]) -> str:
    """Sanitized HTML of the article: each paragraph's own markup when it has some,
    else its text as <p> (lines kept apart by <br>); runs of list items in one <ul> or
    <ol>."""
    parts: list[str] = []
    open_list = ""  # "ul", "ol" or "" outside a list
    for text, markup in paragraphs:
        piece = markup or "<p>" + html.escape(text, quote=False).replace("\n", "<br>") + "</p>"
        kind = "ol" if piece.startswith(ORDERED_ITEM) else "ul" if piece.startswith("<li") else ""
        if kind != open_list:
            if open_list:
                parts.append(f"</{open_list}>")
            if kind:
                parts.append(f"<{kind}>")
            open_list = kind
        parts.append(piece.removeprefix(ORDERED_ITEM))
    if open_list:
        parts.append(f"</{open_list}>")
    return sanitize("".join(parts))

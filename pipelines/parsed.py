"""The values a document becomes once parsed: metadata, lines in paragraphs, and what
boilerplate rules removed. Shared by the text and HTML parsers and the cleaner."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Block:
    """One line of text, and the paragraph it belongs to."""

    text: str
    paragraph: int


@dataclass(frozen=True, slots=True)
class Removal:
    """What a rule removed and what it captured (for ``ingest clean --explain``); a rule
    the valve held back is recorded with ``skipped`` set."""

    rule_id: str
    position: int  # the block (line) index, or -1 for an HTML element
    text: str
    captured: dict[str, str] = field(default_factory=dict)
    skipped: bool = False


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
    image: str | None = None

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
    # For HTML sources: each paragraph's own markup ("<p>…</p>", links absolute, not yet
    # sanitized), so the article's HTML keeps links and emphasis.
    paragraph_html: dict[int, str] = field(default_factory=dict)
    # What html rules removed while the document was parsed.
    removals: list[Removal] = field(default_factory=list)

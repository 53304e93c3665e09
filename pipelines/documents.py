"""Raw documents: what enters the pipeline, before parsing.

A seed file, a fetched page or a feed entry becomes a :class:`RawDocument`: decoded text
plus where it came from. It travels through the Celery queue as a plain dict
(:meth:`RawDocument.to_message`), so a worker on another machine needs no file access.
"""

from __future__ import annotations

import codecs
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from bs4.dammit import UnicodeDammit

from pipelines.article import SourceKind

DocumentKind = Literal["text", "html"]

# File name endings and the kind of document each holds.
SEED_SUFFIXES: dict[str, DocumentKind] = {".txt": "text", ".html": "html", ".htm": "html"}

DEFAULT_MAX_BYTES = 15 * 1024 * 1024


class DocumentError(ValueError):
    """A document that cannot be processed, whatever the number of tries. The message
    says why, in words a user can act on."""

    def __init__(self, reason: str, *, stage: str = "load") -> None:
        super().__init__(reason)
        self.reason = reason
        self.stage = stage


def _time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class FeedFields:
    """What a feed says about one of its entries. These win over what the entry's HTML
    says; ``teaser`` asks the pipeline to fetch the article page (the feed carries only a
    summary)."""

    title: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    updated_at: datetime | None = None
    guid: str | None = None
    site: str | None = None
    summary: str | None = None
    categories: tuple[str, ...] = ()
    teaser: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "author": self.author,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "guid": self.guid,
            "site": self.site,
            "summary": self.summary,
            "categories": list(self.categories),
            "teaser": self.teaser,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeedFields:
        return cls(
            title=data.get("title"),
            author=data.get("author"),
            published_at=_time(data.get("published_at")),
            updated_at=_time(data.get("updated_at")),
            guid=data.get("guid"),
            site=data.get("site"),
            summary=data.get("summary"),
            categories=tuple(data.get("categories") or ()),
            teaser=bool(data.get("teaser")),
        )


@dataclass(frozen=True, slots=True)
class RawDocument:
    kind: DocumentKind
    content: str
    source_kind: SourceKind
    source_ref: str | None = None
    url: str | None = None
    feed_url: str | None = None
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    feed: FeedFields | None = None  # set for feed entries

    @property
    def doc_id(self) -> str:
        """Id of this input (not of the article): the same bytes from the same place
        give the same id, so logs and replay reports can name it."""
        digest = hashlib.sha256()
        digest.update((self.source_ref or self.url or "").encode("utf-8"))
        digest.update(b"\0")
        digest.update(self.content.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()[:24]

    def to_message(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "content": self.content,
            "source_kind": self.source_kind,
            "source_ref": self.source_ref,
            "url": self.url,
            "feed_url": self.feed_url,
            "received_at": self.received_at.isoformat(),
            "feed": self.feed.to_dict() if self.feed else None,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> RawDocument:
        try:
            received = datetime.fromisoformat(message["received_at"])
            return cls(
                kind=message["kind"],
                content=message["content"],
                source_kind=message["source_kind"],
                source_ref=message.get("source_ref"),
                url=message.get("url"),
                feed_url=message.get("feed_url"),
                received_at=received,
                feed=FeedFields.from_dict(message["feed"]) if message.get("feed") else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DocumentError(f"malformed document message: {exc!r}", stage="decode") from exc


def decode_bytes(data: bytes, kind: DocumentKind) -> str:
    """Decode a document's bytes: BOM first, then (for HTML) the declared charset, then
    strict UTF-8, then the best guess (windows-1252 covers most mislabelled Western
    text). Refuses binary data rather than producing garbage."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if b"\x00" in data[:8192]:
        raise DocumentError("binary data (NUL bytes), not a text or HTML document")
    if kind == "text":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    dammit = UnicodeDammit(data, ["utf-8", "windows-1252"], is_html=(kind == "html"))
    if dammit.unicode_markup is None:
        raise DocumentError("could not decode the document in any known encoding")
    return dammit.unicode_markup


def load_file(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> RawDocument:
    """Read one seed file. Raises :class:`DocumentError` with the reason when it
    cannot be a document (unknown type, too large, binary, empty)."""
    kind = SEED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        known = ", ".join(sorted(SEED_SUFFIXES))
        raise DocumentError(f"unsupported file type {path.suffix or '(none)'!r}; known: {known}")
    size = path.stat().st_size
    if size > max_bytes:
        raise DocumentError(f"file is {size} bytes, over the {max_bytes}-byte limit")
    content = decode_bytes(path.read_bytes(), kind)
    if not content.strip():
        raise DocumentError("empty document")
    return RawDocument(kind=kind, content=content, source_kind="seed", source_ref=str(path))

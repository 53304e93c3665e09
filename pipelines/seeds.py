"""Seed files: what ``ingest replay`` and ``ingest clean`` read.

Plain-text seeds (``.txt``), HTML pages (``.html``, ``.htm``) and feed files (``.xml``,
``.rss``, ``.atom``, ``.json`` — RSS, Atom or JSON Feed; each entry is a document, as it
would be when polled). Folders are walked recursively in name order and only files of
these types are taken from them; a file named explicitly is always tried.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.documents import (
    DEFAULT_MAX_BYTES,
    SEED_SUFFIXES,
    DocumentError,
    RawDocument,
    load_file,
)
from pipelines.entries import entry_document
from pipelines.feeds import FeedParseError, parse_feed

FEED_SUFFIXES = {
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".json": "application/feed+json",
}
SEED_TYPES = frozenset(SEED_SUFFIXES) | frozenset(FEED_SUFFIXES)


@dataclass(frozen=True, slots=True)
class LoadedFile:
    path: Path
    documents: list[RawDocument] = field(default_factory=list)
    error: str | None = None


def iter_seed_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files named by ``paths``, each once (folders walked for seed types)."""
    seen: set[Path] = set()
    for path in paths:
        found = (
            [c for c in sorted(path.rglob("*")) if c.is_file() and c.suffix.lower() in SEED_TYPES]
            if path.is_dir()
            else [path]
        )
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                yield file


def load_feed_file(
    path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, teaser_max_words: int = 120
) -> list[RawDocument]:
    """The entries of a saved feed, one document each."""
    size = path.stat().st_size
    if size > max_bytes:
        raise DocumentError(f"file is {size} bytes, over the {max_bytes}-byte limit")
    try:
        parsed = parse_feed(path.read_bytes(), content_type=FEED_SUFFIXES[path.suffix.lower()])
    except FeedParseError as exc:
        raise DocumentError(f"not a feed: {exc}", stage="parse") from exc
    if not parsed.entries:
        raise DocumentError("the feed has no entries", stage="parse")
    return [
        entry_document(
            entry,
            parsed,
            feed_url=None,
            teaser_max_words=teaser_max_words,
            source_ref=f"{path}#{entry.guid or entry.link or index}",
        )
        for index, entry in enumerate(parsed.entries, 1)
    ]


def load_seed_files(
    paths: Iterable[Path], *, max_bytes: int = DEFAULT_MAX_BYTES, teaser_max_words: int = 120
) -> Iterator[LoadedFile]:
    for path in iter_seed_files(paths):
        suffix = path.suffix.lower()
        if suffix not in SEED_TYPES:
            known = ", ".join(sorted(SEED_TYPES))
            yield LoadedFile(
                path, error=f"unsupported file type {suffix or '(none)'!r}; known: {known}"
            )
            continue
        try:
            if suffix in FEED_SUFFIXES:
                documents = load_feed_file(
                    path, max_bytes=max_bytes, teaser_max_words=teaser_max_words
                )
            else:
                documents = [load_file(path, max_bytes=max_bytes)]
            yield LoadedFile(path, documents)
        except DocumentError as exc:
            yield LoadedFile(path, error=exc.reason)
        except OSError as exc:
            yield LoadedFile(path, error=f"cannot read: {exc.strerror or exc}")

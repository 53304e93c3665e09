"""The normalized article: the contract with downstream stages.

One JSON object per stream entry. Downstream code relies on this schema; it is versioned
by ``schema_version`` (bump it on any incompatible change) and published as JSON Schema
in ``pipelines/article.schema.json`` (regenerate with ``ingest schema --write``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer

SCHEMA_VERSION = 1
SCHEMA_FILE = Path(__file__).with_name("article.schema.json")

SourceKind = Literal["feed", "page", "seed"]


class Article(BaseModel):
    """A cleaned, normalized article as published on ``ingest:articles``."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        title="Article",
        json_schema_extra={"$id": "https://feed-ingest.invalid/schema/article/v1"},
    )

    schema_version: Literal[1] = Field(
        default=SCHEMA_VERSION, description="Version of this schema; bumped on breaking changes"
    )
    id: str = Field(
        description="Stable id: derived from the canonical URL (scheme and www./m. "
        "prefixes ignored), or from the content hash when the document has no URL",
        pattern=r"^[0-9a-f]{32}$",
    )
    story_id: str = Field(
        description="Id of the first-seen article of this story's repost cluster "
        "(equal to id for a first sighting)",
        pattern=r"^[0-9a-f]{32}$",
    )
    update_of: str | None = Field(
        None,
        description="Set on a longer later version of a story (the full text after a "
        "teaser), published as an update: the id of the story's first-seen article",
        pattern=r"^[0-9a-f]{32}$",
    )
    url: str | None = Field(None, description="URL the document was fetched from or names")
    canonical_url: str | None = Field(
        None,
        description="rel=canonical or og:url, else the document's URL: absolute http(s), "
        "normalized (host lower-cased, default port, sorted query, no fragment) and "
        "stripped of tracking parameters (utm_*, fbclid, config/tracking_params.yaml)",
    )
    original_url: str | None = Field(
        None, description="Where a repost names its source (e.g. a 'Go to Source' link)"
    )
    feed_url: str | None = Field(None, description="Feed the entry came from")
    guid: str | None = Field(None, description="The feed entry's guid/id, when any")
    site: str | None = Field(None, description="Host name or site name of the publisher")
    title: str = Field(min_length=1, description="Title, whitespace-normalized")
    author: str | None = Field(None, description="Author, from fields or captured bylines")
    published_at: AwareDatetime | None = Field(
        None, description="Publication time, ISO 8601 in UTC"
    )
    updated_at: AwareDatetime | None = Field(
        None, description="Last update the source reports, ISO 8601 in UTC"
    )
    fetched_at: AwareDatetime = Field(description="When the document entered the pipeline, UTC")
    language: str | None = Field(None, description="BCP 47 language tag, when known")
    text: str = Field(
        min_length=1,
        description="Clean plain text: paragraphs separated by one blank line, NFC, "
        "plain spaces, no boilerplate",
    )
    html: str = Field(
        description="Sanitized HTML of the clean text: an allow-list of tags, links absolute, "
        "no scripts, styles, frames, event handlers or javascript: URLs"
    )
    summary: str | None = Field(None, description="The feed's summary, else the lead paragraph")
    categories: list[str] = Field(
        default_factory=list, description="The feed entry's categories or tags"
    )
    image: str | None = Field(None, description="Lead image URL (og:image, JSON-LD image)")
    word_count: int = Field(ge=0)
    content_hash: str = Field(
        pattern=r"^[0-9a-f]{32}$",
        description="Hash of the text's match form (NFKC, case-folded, punctuation and "
        "whitespace collapsed): the exact-dedup key",
    )
    fingerprint: str | None = Field(
        None,
        description="Near-duplicate fingerprint, hex: the low byte of 128 MinHash values "
        "over 5-word shingles of the match form, the shingle count (4 bytes, big-endian), "
        "a hash of the first 30 words (8 bytes), the paragraph count (1 byte) and 4-byte "
        "hashes of the first 8 paragraphs (layout: pipelines/neardup.py)",
        pattern=r"^[0-9a-f]{282}([0-9a-f]{8}){0,8}$",
    )
    removed: list[str] = Field(
        default_factory=list, description="Ids of the boilerplate rules that fired, in order"
    )
    source_kind: SourceKind = Field(description="feed, page or seed")
    source_ref: str | None = Field(
        None, description="Where the document came from: a seed file's path, an entry link"
    )

    @field_serializer("published_at", "updated_at", "fetched_at")
    def _utc_iso(self, value: datetime | None) -> str | None:
        # Always "…Z": downstream parsers should not have to guess the offset syntax.
        return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")

    def to_json(self) -> str:
        return self.model_dump_json()


def article_id(url_key: str | None, content_hash: str) -> str:
    """Stable article id: from the canonical URL's alias form (``pipelines.urls.url_key``:
    the http and https, www. and bare addresses of a page are one article) when there is
    one, else the content."""
    basis = f"url:{url_key}" if url_key else f"text:{content_hash}"
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]


def json_schema() -> dict[str, Any]:
    schema = Article.model_json_schema(mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"

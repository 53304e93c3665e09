"""URLs as identities."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


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

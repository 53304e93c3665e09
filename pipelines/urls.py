"""URLs as identities: a canonical form for an article's address, and the alias form
its dedup key is made of.

* :func:`canonical_url` — absolute http(s) only; host, port and path normalized by
  courlan (lower-cased host, default ports dropped), fragment dropped, query pairs sorted
  and kept as written, except trackers: courlan's (utm_*, fbclid, gclid and most known
  ones) and those in ``config/tracking_params.yaml``. Content parameters (id, page, p…)
  stay.
* :func:`url_key` (:func:`alias_form` of the canonical form) — that form with the
  scheme, a leading ``www.`` / ``m.`` / ``amp.`` and a trailing slash dropped: the http
  and https, desktop and mobile addresses of one article are one key.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote_plus, urlsplit, urlunsplit

import yaml
from courlan import normalize_url
from courlan.clean import TRACKERS_RE  # utm_*, fbclid, gclid and kin

TRACKING_PARAMS_FILE = Path(__file__).resolve().parents[1] / "config" / "tracking_params.yaml"
_ALIAS_PREFIXES = ("www.", "m.", "mobile.", "amp.")


def absolute_url(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL, with the scheme and host lower-cased and
    the fragment dropped; None otherwise (a malformed URL too: a captured link must not
    sink its batch). A relative canonical link on a page with no known address names
    nothing: two pages must not share "/story" as an identity."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return None
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:  # "http://[bad/x", a port that is not a number…
        return None
    netloc = parts.netloc.rsplit("@", 1)[-1].lower()
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


@lru_cache(maxsize=4)
def tracking_params(path: Path = TRACKING_PARAMS_FILE) -> frozenset[str]:
    """The deny-list: every parameter of every rule, lower-cased."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    names: set[str] = set()
    for rule in data.get("rules", []):
        if not rule.get("id") or not rule.get("reason"):
            raise ValueError(f"{path}: every rule needs an id and a reason: {rule!r}")
        names.update(str(p).lower() for p in rule.get("params", []))
    return frozenset(names)


def _is_tracker(raw_key: str, denied: frozenset[str]) -> bool:
    key = unquote_plus(raw_key).lower()
    return key in denied or TRACKERS_RE.search(key) is not None


def canonical_url(url: str | None, deny: Iterable[str] | None = None) -> str | None:
    """The article's canonical address (see the module docstring), or None.

    courlan normalizes the scheme, host, port and path; the query is filtered here, pair
    by pair as written: courlan would drop keys without a value ("story.php?12345") and
    rewrite undecodable escapes, which can make two articles one address."""
    base = absolute_url(url)
    if base is None:
        return None
    parts = urlsplit(base)
    try:
        normalized = urlsplit(normalize_url(urlunsplit(parts._replace(query=""))))
    except ValueError:
        normalized = parts
    denied = tracking_params() if deny is None else frozenset(p.lower() for p in deny)
    kept = sorted(
        pair
        for pair in parts.query.split("&")
        if pair and not _is_tracker(pair.partition("=")[0], denied)
    )
    return urlunsplit(normalized._replace(query="&".join(kept), fragment=""))


def url_key(url: str | None) -> str | None:
    """The alias form of any URL (see :func:`alias_form`), or None."""
    canonical = canonical_url(url)
    return None if canonical is None else alias_form(canonical)


def alias_form(canonical: str) -> str:
    """The alias form of a URL already in canonical form: no scheme, no www./m./amp.
    prefix, no trailing slash."""
    parts = urlsplit(canonical)
    host = parts.netloc
    for prefix in _ALIAS_PREFIXES:
        if host.startswith(prefix) and host.count(".") > 1:
            host = host[len(prefix) :]
            break
    path = parts.path.rstrip("/") or "/"  # "/story/" and "/story" are one page
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{path}{query}"

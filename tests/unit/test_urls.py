"""Canonical URLs and their alias form: what makes two addresses one article."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipelines.urls import TRACKING_PARAMS_FILE, canonical_url, tracking_params, url_key


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # courlan's part: trackers it knows, host case, default port, fragment, query order
        (
            "https://Example.COM:443/news/story?utm_source=rss&utm_medium=feed#comments",
            "https://example.com/news/story",
        ),
        ("https://example.com/a?fbclid=IwAR0abc&gclid=xyz", "https://example.com/a"),
        ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
        # our deny-list (config/tracking_params.yaml): ones courlan keeps
        (
            "https://www.nytimes.com/2020/02/03/x.html?smid=tw-share",
            "https://www.nytimes.com/2020/02/03/x.html",
        ),
        ("https://news.example/s?cmpid=rss&ocid=msn&ito=792", "https://news.example/s"),
        ("https://news.example/s?guccounter=1&sr_share=twitter", "https://news.example/s"),
        # content parameters stay
        (
            "https://example.com/article.php?id=42&utm_campaign=x",
            "https://example.com/article.php?id=42",
        ),
        ("https://example.com/story?page=2&p=7", "https://example.com/story?p=7&page=2"),
    ],
)
def test_canonical_url_strips_trackers_and_keeps_content(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    "url", [None, "", "/relative/story", "mailto:a@example.com", "javascript:alert(1)", "ftp://x"]
)
def test_only_absolute_http_urls_are_identities(url: str | None) -> None:
    assert canonical_url(url) is None
    assert url_key(url) is None


@pytest.mark.parametrize(
    ("one", "other"),
    [
        # keys without a value, and undecodable escapes, are content too
        ("https://example.com/story.php?12345", "https://example.com/story.php?12346"),
        ("https://example.com/s?q=%E9", "https://example.com/s?q=%E8"),
        ("https://example.com/s?id=", "https://example.com/s"),
        ("https://example.com:8080/a", "https://example.com/a"),
    ],
)
def test_addresses_that_differ_in_content_stay_apart(one: str, other: str) -> None:
    assert canonical_url(one) != canonical_url(other)


@pytest.mark.parametrize("url", ["http://[bad/x", "https://example.com:notaport/a", "http://"])
def test_a_malformed_url_is_no_identity_rather_than_an_error(url: str) -> None:
    assert canonical_url(url) is None and url_key(url) is None


def test_scheme_www_mobile_and_trailing_slash_variants_are_one_key() -> None:
    variants = [
        "http://example.com/news/story",
        "https://example.com/news/story/",
        "https://www.example.com/news/story",
        "https://m.example.com/news/story?utm_source=twitter",
        "https://amp.example.com/news/story#top",
    ]
    assert {url_key(v) for v in variants} == {"example.com/news/story"}


def test_different_pages_and_hosts_stay_apart() -> None:
    assert url_key("https://example.com/story?id=1") != url_key("https://example.com/story?id=2")
    assert url_key("https://example.com/a") != url_key("https://example.org/a")
    # A bare two-label host is not a prefix: "m.com" is not "com".
    assert url_key("https://m.com/a") == "m.com/a"


def test_every_tracking_rule_has_an_id_a_reason_and_no_content_parameter() -> None:
    rules = yaml.safe_load(TRACKING_PARAMS_FILE.read_text(encoding="utf-8"))["rules"]
    ids = [rule["id"] for rule in rules]
    assert len(ids) == len(set(ids))
    for rule in rules:
        assert rule["reason"].strip() and rule["params"], rule
    assert not {"id", "page", "p", "story", "article", "q"} & tracking_params()


def test_a_tracking_rule_without_a_reason_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "tracking.yaml"
    bad.write_text("rules:\n  - id: x\n    params: [x]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="id and a reason"):
        tracking_params(bad)

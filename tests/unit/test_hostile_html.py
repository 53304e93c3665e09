"""Hostile and arbitrary HTML: sanitized output, bounded work, no crash."""

from __future__ import annotations

import subprocess
import sys
from zoneinfo import ZoneInfo

import lxml.html
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.settings import load_settings
from pipelines.documents import DocumentError, FeedFields, RawDocument
from pipelines.process import process_document
from pipelines.rules import rules_from_dir
from pipelines.sanitize import sanitize
from tests.helpers import REPO

RULES = rules_from_dir(load_settings({}).boilerplate_dir)
UTC = ZoneInfo("UTC")
EVIL = (
    '<p onclick="steal()" style="color:red">Hello <a href="javascript:alert(1)">there</a>'
    '<img src="x" onerror="alert(1)"><script>alert(1)</script>'
    '<iframe src="https://evil.example/"></iframe><style>p{}</style>'
    '<a href="/relative" onmouseover="x()">relative</a> world.</p>'
)


def article_of(content: str, *, feed: bool):
    doc = RawDocument(
        kind="html",
        content=content,
        source_kind="feed" if feed else "page",
        url="https://site.example/news/post",
        feed=FeedFields(title="A title") if feed else None,
    )
    return process_document(doc, RULES, default_tz=UTC).article


def assert_safe(html: str) -> None:
    """No active content in the markup (escaped text may say anything)."""
    if not html.strip():
        return
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    for element in root.iter():
        assert element.tag not in ("script", "style", "iframe", "object", "embed", "form")
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), name
            assert name.lower() != "style"
            assert not value.strip().lower().startswith("javascript:"), value


@pytest.mark.parametrize("feed", [True, False])
def test_scripts_handlers_and_javascript_urls_do_not_survive(feed: bool) -> None:
    page = f"<html><head><title>T</title></head><body><article>{EVIL * 30}</article></body></html>"
    article = article_of(EVIL * 3 if feed else page, feed=feed)
    assert_safe(article.html)
    assert "alert" not in article.text and "Hello there" in article.text
    if feed:  # a feed entry's links are kept, made absolute (a page's are dropped)
        assert 'href="https://site.example/relative"' in article.html
        assert 'rel="noopener noreferrer nofollow"' in article.html


def test_sanitize_alone() -> None:
    cleaned = sanitize('<a href="javascript:x()">a</a><b onclick="y">b</b><script>z</script>')
    assert cleaned == '<a rel="noopener noreferrer nofollow">a</a><b>b</b>'


def test_ten_thousand_deep_nesting_is_no_crash() -> None:
    deep = "<div>" * 10_000 + "<p>deep text</p>" + "</div>" * 10_000
    for content, feed in (
        (deep, True),
        (f"<html><head><title>T</title></head><body>{deep}</body></html>", False),
    ):
        try:
            article = article_of(content, feed=feed)
        except DocumentError as exc:  # the parser gives up past its depth limit: a clean no
            assert exc.stage in ("parse", "clean")
        else:
            assert_safe(article.html)


_BIG_PAGE = """
import resource, sys
from zoneinfo import ZoneInfo
from config.settings import load_settings
from pipelines.documents import RawDocument
from pipelines.process import process_document
from pipelines.rules import rules_from_dir
body = "".join(f"<p>{'word ' * 200}{i}</p>" for i in range(10_000))  # about 10 MB
page = f"<html><head><title>Big</title></head><body><article>{body}</article></body></html>"
doc = RawDocument(kind="html", content=page, source_kind="page", url="https://x.example/")
article = process_document(doc, rules_from_dir(load_settings({}).boilerplate_dir),
                           default_tz=ZoneInfo("UTC")).article
print(article.word_count, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


@pytest.mark.timeout(120)
def test_ten_megabytes_of_text_is_bounded() -> None:
    """In a process of its own, so its peak memory is its own."""
    result = subprocess.run(
        [sys.executable, "-c", _BIG_PAGE], cwd=REPO, capture_output=True, text=True, timeout=110
    )
    assert result.returncode == 0, result.stderr[-2000:]
    words, peak_mb = map(int, result.stdout.split())
    assert words > 1_900_000
    assert peak_mb < 1_500  # a generous bound: nothing runaway


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=3000), st.booleans())
def test_the_cleaner_never_raises_on_any_text(content: str, feed: bool) -> None:
    try:
        article = article_of(content, feed=feed)
    except DocumentError:
        return  # a clear refusal is fine; anything else is a bug
    assert_safe(article.html)
    assert article.text.strip() == article.text and "\n\n\n" not in article.text


_TAGS = st.sampled_from(
    [
        "p",
        "div",
        "a",
        "script",
        "style",
        "iframe",
        "img",
        "span",
        "li",
        "ul",
        "h2",
        "noscript",
        "form",
        "table",
        "td",
        "article",
        "b",
        "br",
    ]
)
_ATTRS = st.sampled_from(
    [
        "",
        ' onclick="x()"',
        ' href="javascript:x()"',
        ' src="j"',
        ' class="sharedaddy"',
        ' id="wpdcom"',
        ' style="a:b"',
    ]
)


@st.composite
def html_soup(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 40))):
        tag, attr = draw(_TAGS), draw(_ATTRS)
        text = draw(st.text(max_size=40))
        parts.append(
            draw(
                st.sampled_from(
                    [f"<{tag}{attr}>{text}", f"</{tag}>", text, f"<{tag}{attr}>{text}</{tag}>"]
                )
            )
        )
    return "".join(parts)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(html_soup(), st.booleans())
def test_the_cleaner_never_raises_on_tag_soup_and_never_outputs_script(
    content: str, feed: bool
) -> None:
    page = f"<html><head><title>Soup</title></head><body>{content}</body></html>"
    try:
        article = article_of(content if feed else page, feed=feed)
    except DocumentError:
        return
    assert_safe(article.html)
    assert "<script" not in article.text.lower()

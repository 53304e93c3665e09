from zoneinfo import ZoneInfo

from config.settings import load_settings
from pipelines.html import parse_html as _parse_html
from pipelines.parsed import ParsedDocument
from pipelines.rules import rules_from_dir

RULES = rules_from_dir(load_settings({}).boilerplate_dir)


def parse_html(
    content: str, *, base_url: str | None, default_tz: ZoneInfo, page: bool = True
) -> ParsedDocument:
    return _parse_html(
        content, base_url=base_url, default_tz=default_tz, rules=RULES, page=page, max_share=0.5
    )


PAGE = """<!doctype html>
<html lang="en-GB"><head>
<title>Fallback title</title>
<meta property="og:title" content="The  Real Title">
<meta property="og:site_name" content="Example News">
<meta name="author" content="Jane Roe">
<meta property="article:published_time" content="2024-05-06T07:08:09+02:00">
<meta name="description" content="A summary.">
<link rel="canonical" href="/news/real-title">
<script>var tracking = 1;</script><style>p{}</style>
</head><body>
<nav><p>Home | World</p></nav>
<article>
  <h1>The Real Title</h1>
  <p>First&nbsp;paragraph with <a href="/x">a link</a>.</p>
  <p>The council met on Tuesday evening to discuss the budget for the coming year, and the
  debate ran long past the usual hour as members argued over the library and the pool.</p>
  <p>In the end the budget passed by a narrow margin, with two members abstaining and the
  chair promising a review of the library's opening hours before the summer recess.</p>
  <p>Line one<br>line two</p>
  <ul><li>Item one</li><li>Item two</li></ul>
  <aside><p>Related: something else</p></aside>
</article>
<footer><p>Copyright</p></footer>
</body></html>"""


def test_metadata_from_meta_tags() -> None:
    parsed = parse_html(PAGE, base_url="https://example.org/a?x=1", default_tz=ZoneInfo("UTC"))
    meta = parsed.meta
    assert meta.title == "The Real Title"
    assert meta.author == "Jane Roe"
    assert meta.canonical_url == "https://example.org/news/real-title"
    assert meta.site == "Example News"
    assert meta.language == "en-GB"
    assert meta.summary == "A summary."
    assert meta.published_at is not None and meta.published_at.isoformat() == (
        "2024-05-06T07:08:09+02:00"
    )


def test_a_page_gives_its_article_without_navigation_or_scripts() -> None:
    parsed = parse_html(PAGE, base_url="https://example.org/a", default_tz=ZoneInfo("UTC"))
    texts = [b.text for b in parsed.blocks]
    assert "First paragraph with a link." in texts
    assert any(t.startswith("In the end the budget passed") for t in texts)
    assert "Item one" in texts and "Item two" in texts
    assert not any(t in texts for t in ("Home | World", "Copyright", "Related: something else"))
    assert not any("tracking" in t for t in texts)
    # <br> keeps two lines in one paragraph
    one, two = texts.index("Line one"), texts.index("line two")
    assert parsed.blocks[one].paragraph == parsed.blocks[two].paragraph
    # A page's paragraph markup keeps formatting; its links are dropped (trafilatura
    # extracts articles better without them).
    html = "".join(parsed.paragraph_html.values())
    assert "<li>Item one</li>" in html and "<a " not in html


def test_a_feed_fragment_gives_its_blocks_as_they_are() -> None:
    fragment = '<p>One <a href="/x">link</a>.</p><ul><li>Item</li></ul><p>Line<br>two</p>'
    parsed = parse_html(
        fragment, base_url="https://example.org/post", default_tz=ZoneInfo("UTC"), page=False
    )
    assert [b.text for b in parsed.blocks] == ["One link.", "Item", "Line", "two"]
    assert parsed.paragraph_html[0] == '<p>One <a href="https://example.org/x">link</a>.</p>'


def test_a_bare_fragment_still_gives_text() -> None:
    parsed = parse_html(
        "Just <b>some</b> text", base_url=None, default_tz=ZoneInfo("UTC"), page=False
    )
    assert [b.text for b in parsed.blocks] == ["Just some text"]


def test_json_ld_fills_what_meta_tags_lack() -> None:
    page = """<html><head><title>T | Site</title>
    <script type="application/ld+json">{"@context": "https://schema.org", "@graph": [
      {"@type": "WebSite", "name": "Site"},
      {"@type": ["NewsArticle"], "headline": "The Headline",
       "datePublished": "2024-05-06T07:08:09Z", "dateModified": "2024-05-07T00:00:00+02:00",
       "author": [{"@type": "Person", "name": "Ann Lee"}, {"name": "Bo Chan"}],
       "image": {"url": "/lead.jpg"}, "publisher": {"name": "The Daily"}}]}
    </script></head><body><article><p>Text of the article.</p></article></body></html>"""
    meta = parse_html(page, base_url="https://daily.example/a", default_tz=ZoneInfo("UTC")).meta
    assert meta.title == "The Headline" and meta.author == "Ann Lee, Bo Chan"
    assert meta.published_at is not None and meta.published_at.isoformat() == (
        "2024-05-06T07:08:09+00:00"
    )
    assert meta.updated_at is not None and meta.updated_at.hour == 0
    assert meta.image == "https://daily.example/lead.jpg" and meta.site == "The Daily"


def test_canonical_urls_must_be_absolute() -> None:
    from pipelines.urls import absolute_url

    assert absolute_url("HTTPS://Example.ORG/Path?q=1#frag") == "https://example.org/Path?q=1"
    assert absolute_url("https://example.org") == "https://example.org/"
    assert absolute_url("/relative/story") is None
    assert absolute_url("javascript:alert(1)") is None
    assert absolute_url("ftp://example.org/x") is None
    page = '<html><head><title>T</title><link rel="canonical" href="/story"></head></html>'
    assert parse_html(page, base_url=None, default_tz=ZoneInfo("UTC")).meta.canonical_url is None
    assert (
        parse_html(
            page, base_url="https://a.example/x", default_tz=ZoneInfo("UTC")
        ).meta.canonical_url
        == "https://a.example/story"
    )

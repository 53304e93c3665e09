from zoneinfo import ZoneInfo

from pipelines.parse import parse_html

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


def test_blocks_come_from_the_article_without_navigation_or_scripts() -> None:
    parsed = parse_html(PAGE, base_url=None, default_tz=ZoneInfo("UTC"))
    texts = [b.text for b in parsed.blocks]
    assert texts == [
        "The Real Title",
        "First paragraph with a link.",
        "Line one",
        "line two",
        "Item one",
        "Item two",
    ]
    # <br> keeps two lines in one paragraph
    assert parsed.blocks[2].paragraph == parsed.blocks[3].paragraph
    assert parsed.line_joiner == "\n"


def test_a_bare_fragment_still_gives_text() -> None:
    parsed = parse_html("Just <b>some</b> text", base_url=None, default_tz=ZoneInfo("UTC"))
    assert [b.text for b in parsed.blocks] == ["Just some text"]


def test_canonical_urls_must_be_absolute() -> None:
    from pipelines.parse import absolute_url

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

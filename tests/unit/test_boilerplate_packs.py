"""Golden files per pack (tests/fixtures/boilerplate/<pack>/<case>.html|.txt and
.expected.json): the markup those plugins produce, and what a reader must get."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from config.settings import load_settings
from pipelines.documents import FeedFields, RawDocument
from pipelines.process import Processed, process_document
from pipelines.rules import rules_from_dir
from pipelines.text import normalize_line

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "boilerplate"
RULES = rules_from_dir(load_settings({}).boilerplate_dir)
CASES = sorted(p for p in FIXTURES.glob("*/*.expected.json"))


def source_of(expected_file: Path) -> Path:
    stem = expected_file.name.removesuffix(".expected.json")
    found = [p for p in expected_file.parent.glob(f"{stem}.*") if p != expected_file]
    assert len(found) == 1, found
    return found[0]


def clean_case(expected_file: Path) -> tuple[Processed, dict[str, Any]]:
    expected = json.loads(expected_file.read_text(encoding="utf-8"))
    source = source_of(expected_file)
    content = source.read_text(encoding="utf-8")
    if source.suffix == ".txt":
        doc = RawDocument(kind="text", content=content, source_kind="seed", url=expected["url"])
    elif expected["kind"] == "fragment":
        doc = RawDocument(
            kind="html",
            content=content,
            source_kind="feed",
            url=expected["url"],
            feed=FeedFields(title=expected["title"]),
        )
    else:
        doc = RawDocument(kind="html", content=content, source_kind="page", url=expected["url"])
    return process_document(doc, RULES, default_tz=ZoneInfo("UTC")), expected


def test_every_pack_has_golden_cases() -> None:
    packs = {p.parent.name for p in CASES}
    assert {
        "aggregator",
        "wpdiscuz",
        "wordpress",
        "feedburner",
        "share",
        "comments",
        "newsletter",
        "article",
    } <= packs


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name[:-14]}")
def test_golden_case(case: Path) -> None:
    processed, expected = clean_case(case)
    article = processed.article
    paragraphs = [normalize_line(p) for p in expected["paragraphs"]]
    # Paragraphs the page extractor is known to lose (stated in the fixture) may be absent.
    may_drop = set(expected.get("extractor_may_drop", []))
    got = article.text.split("\n\n")
    assert got == [p for p in paragraphs if p in got or p not in may_drop]
    for phrase in expected.get("absent", []):
        assert phrase not in article.text, phrase
    for markup in expected.get("absent_html", []):
        assert markup not in article.html, markup
    for markup in expected.get("present_html", []):
        assert markup in article.html, markup
    for name, value in expected.get("captured", {}).items():
        got = getattr(article, name)
        if isinstance(got, datetime):
            assert got == datetime.fromisoformat(value.replace("Z", "+00:00")), name
        else:
            assert got == value, name
    assert set(expected.get("rules", [])) <= set(article.removed), article.removed


def test_plain_text_and_html_versions_of_one_article_give_the_same_text() -> None:
    seed, _ = clean_case(FIXTURES / "article" / "title-byline-dateline-seed.expected.json")
    page, _ = clean_case(FIXTURES / "article" / "title-byline-dateline.expected.json")
    assert seed.article.text == page.article.text
    assert seed.article.content_hash == page.article.content_hash
    assert (seed.article.author, seed.article.published_at) == (
        page.article.author,
        page.article.published_at,
    )

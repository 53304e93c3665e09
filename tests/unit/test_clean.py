"""Cleaning through the real rule packs, offline."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from config.settings import load_settings
from pipelines.documents import DocumentError, RawDocument, load_file
from pipelines.process import process_document
from pipelines.rules import load_rules, rules_from_dir
from tests.expectations import assert_seed_article
from tests.helpers import SEED

RULES = rules_from_dir(load_settings({}).boilerplate_dir)
UTC_ZONE = ZoneInfo("UTC")


def text_doc(content: str) -> RawDocument:
    return RawDocument(kind="text", content=content, source_kind="seed", source_ref="t.txt")


def test_the_seed_comes_out_right() -> None:
    article = process_document(load_file(SEED), RULES, default_tz=UTC_ZONE).article
    assert_seed_article(json.loads(article.to_json()))


def test_the_default_zone_applies_to_datelines() -> None:
    article = process_document(
        load_file(SEED), RULES, default_tz=ZoneInfo("America/New_York")
    ).article
    assert article.published_at == datetime(2020, 2, 4, 1, 25, tzinfo=UTC)


def test_the_tail_stops_at_the_last_line_of_the_article() -> None:
    doc = text_doc(
        "A title\n\nThe motion failed.\n\nArticle Rating\n\nThe vote was close.\n\n"
        "Go to Source\nAuthor: Jane Roe\n\n0 0 votes\nArticle Rating\n"
    )
    processed = process_document(doc, RULES, default_tz=UTC_ZONE)
    article = processed.article
    # "Article Rating" inside the body is not a trailing line: it stays.
    assert article.text == "The motion failed.\n\nArticle Rating\n\nThe vote was close."
    assert article.author == "Jane Roe"
    assert [r.rule_id for r in processed.cleaned.removals] == [
        "wpdiscuz.article-rating",
        "wpdiscuz.rating-votes",
        "aggregator.author-footer",
        "aggregator.go-to-source",
    ]


def test_lines_of_one_paragraph_reflow() -> None:
    article = process_document(
        text_doc("T\n\nfirst line\nsecond line\n\nnext"), RULES, default_tz=UTC_ZONE
    ).article
    assert article.text == "first line second line\n\nnext"


def test_a_byline_is_captured_when_the_author_is_unknown() -> None:
    article = process_document(
        text_doc("A title\n\nBy Jane Roe\n\nBody text here."), RULES, default_tz=UTC_ZONE
    ).article
    assert article.author == "Jane Roe"
    assert article.text == "Body text here."
    assert article.removed == ["article.byline-by"]


def test_metadata_wins_over_captured_boilerplate() -> None:
    page = (
        '<html><head><title>T</title><meta name="author" content="Meta Author"></head>'
        "<body><article><p>Body text.</p><p>Author: Footer Author</p></article></body></html>"
    )
    doc = RawDocument(kind="html", content=page, source_kind="seed")
    article = process_document(doc, RULES, default_tz=UTC_ZONE).article
    assert article.author == "Meta Author"
    assert article.text == "Body text."


def test_a_document_of_only_boilerplate_fails_with_the_rules_named() -> None:
    with pytest.raises(DocumentError, match="no article text left") as info:
        process_document(
            text_doc("T\n\nGo to Source\nView all comments"), RULES, default_tz=UTC_ZONE
        )
    assert "aggregator.go-to-source" in info.value.reason
    assert info.value.stage == "clean"


def test_a_document_without_a_title_fails() -> None:
    page = "<html><body></body></html>"
    with pytest.raises(DocumentError, match="no title"):
        process_document(
            RawDocument(kind="html", content=page, source_kind="seed"), RULES, default_tz=UTC_ZONE
        )


def test_the_same_input_gives_the_same_article_id_and_hash() -> None:
    one = process_document(load_file(SEED), RULES, default_tz=UTC_ZONE).article
    two = process_document(load_file(SEED), RULES, default_tz=UTC_ZONE).article
    assert (one.id, one.content_hash) == (two.id, two.content_hash)
    assert one.story_id == one.id


def eager_pack(tmp_path, body: str):  # type: ignore[no-untyped-def]
    (tmp_path / "eager.yaml").write_text(
        "pack: eager\ndescription: an over-eager pack\nrules:\n" + body, encoding="utf-8"
    )
    return load_rules([tmp_path, load_settings({}).boilerplate_dir])


ARTICLE_PAGE = (
    "<html><head><title>Budget night</title></head><body><article>"
    + "".join(
        f"<p>Paragraph {i}: the council debated the budget late into the night, and "
        "members argued over the library, the pool and the buses.</p>"
        for i in range(12)
    )
    + "</article></body></html>"
)


def test_the_valve_holds_an_html_rule_that_would_eat_the_article(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rules = eager_pack(
        tmp_path,
        """
  - id: eager.paragraphs
    reason: a careless rule that takes every paragraph
    where: html
    selector: p
""",
    )
    doc = RawDocument(
        kind="html", content=ARTICLE_PAGE, source_kind="page", url="https://news.example/budget"
    )
    processed = process_document(doc, rules, default_tz=UTC_ZONE, max_share=0.5)
    assert processed.article.text.count("Paragraph") == 12  # the article survived
    (held,) = [r for r in processed.cleaned.removals if r.rule_id == "eager.paragraphs"]
    assert held.skipped and "eager.paragraphs" not in processed.article.removed
    # With the valve opened wide, the same rule does eat the article (so the test can fail).
    with pytest.raises(DocumentError, match="no article text left"):
        process_document(doc, rules, default_tz=UTC_ZONE, max_share=1.0)


def test_the_valve_holds_a_line_rule_that_would_eat_the_article(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rules = eager_pack(
        tmp_path,
        """
  - id: eager.lines
    reason: a careless rule that takes every line mentioning the council
    where: any
    pattern: '.*council.*'
""",
    )
    doc = text_doc(
        "Budget night\n\n"
        + "\n\n".join(
            f"Paragraph {i}: the council debated the budget late into the night." for i in range(12)
        )
    )
    processed = process_document(doc, rules, default_tz=UTC_ZONE, max_share=0.5)
    assert processed.article.text.count("Paragraph") == 12
    assert any(r.rule_id == "eager.lines" and r.skipped for r in processed.cleaned.removals)


def test_suffix_rules_cut_every_tail_of_the_last_line() -> None:
    article = process_document(
        text_doc("T\n\nA first paragraph.\n\nThe excerpt ends here […] Continue reading →"),
        RULES,
        default_tz=UTC_ZONE,
    ).article
    assert article.text == "A first paragraph.\n\nThe excerpt ends here"
    assert article.removed == ["wordpress.continue-reading", "wordpress.excerpt-ellipsis"]

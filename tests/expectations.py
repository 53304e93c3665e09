"""What the seed must come out as (issue 2), checked offline and end to end alike."""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from pipelines.article import SCHEMA_FILE

SEED_TITLE = "Head Of Iran’s IRGC Operations In Syria Killed Near Aleppo"
FORBIDDEN_IN_TEXT = (
    "Go to Source",
    "Author: Tyler Durden",
    "votes",
    "Article Rating",
    "Inline Feedbacks",
    "View all comments",
    "Mon, 02/03/2020",
    "20:25",
    SEED_TITLE,
)


def validate_article(article: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(article)


def assert_seed_article(article: dict[str, Any]) -> None:
    validate_article(article)
    assert article["title"] == SEED_TITLE
    assert article["author"] == "Tyler Durden"
    assert article["published_at"] == "2020-02-03T20:25:00Z"
    assert article["source_kind"] == "seed"
    text: str = article["text"]
    assert text.startswith("Iranian state media sources have reported")
    assert text.endswith("currently in dispute.")
    for phrase in FORBIDDEN_IN_TEXT:
        assert phrase not in text, phrase
    # The bare byline line is gone (the name may not stand alone on a line).
    assert "\nTyler Durden\n" not in f"\n{text}\n"
    assert "\n\n" in text and "\n\n\n" not in text
    paragraphs = text.split("\n\n")
    assert len(paragraphs) == 14
    assert all(p == p.strip() and "\n" not in p for p in paragraphs)
    assert "\u00a0" not in text and "  " not in text
    assert "“one of the first to go to Syria with Qassem Soleimani.”" in text  # curly quotes
    assert "Iran’s Quds Force" in text
    assert article["removed"] == [
        "article.title-repeated",
        "article.byline-repeated",
        "article.dateline-us",
        "aggregator.go-to-source",
        "aggregator.author-footer",
        "wpdiscuz.rating-votes",
        "wpdiscuz.article-rating",
        "wpdiscuz.inline-feedbacks",
        "wpdiscuz.view-all-comments",
    ]
    assert article["word_count"] == sum(1 for t in text.split() if any(c.isalnum() for c in t))

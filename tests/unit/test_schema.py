import json

from pipelines.article import SCHEMA_FILE, json_schema_text


def test_committed_schema_is_generated_from_the_model() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == json_schema_text(), (
        "pipelines/article.schema.json is stale: run `ingest schema --write`"
    )


def test_schema_requires_the_contract_fields() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    for field in (
        "id",
        "story_id",
        "title",
        "text",
        "fetched_at",
        "content_hash",
        "source_kind",
        "word_count",
        "html",
    ):
        assert field in schema["required"], field
    assert schema["properties"]["schema_version"]["const"] == 1

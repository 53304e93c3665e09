import re
from pathlib import Path

import pytest

from config.settings import Settings, SettingsError, defaults, env_var, load_settings
from tests.helpers import REPO


def test_defaults_cover_every_setting_and_nothing_else() -> None:
    assert set(defaults()) == set(Settings.model_fields)


def test_defaults_load() -> None:
    settings = load_settings({})
    assert settings.redis_url is None
    assert settings.default_timezone == "UTC"
    assert settings.articles_stream == "ingest:articles"
    assert settings.dedup_ttl == 14 * 24 * 3600


def test_environment_overrides_config_file_overrides_defaults(tmp_path: Path) -> None:
    config = tmp_path / "ingest.yaml"
    config.write_text("dedup_ttl: 60\nflower_port: 6000\n")
    settings = load_settings(
        {
            "INGEST_CONFIG_FILE": str(config),
            "INGEST_FLOWER_PORT": "7000",
            "REDIS_URL": "redis://example:6379/1",
        }
    )
    assert settings.dedup_ttl == 60
    assert settings.flower_port == 7000
    assert settings.redis_url == "redis://example:6379/1"


def test_an_empty_variable_unsets_an_optional_setting() -> None:
    assert load_settings({"REDIS_URL": ""}).redis_url is None


def test_a_bad_value_names_its_variable() -> None:
    with pytest.raises(SettingsError, match="INGEST_DEDUP_TTL"):
        load_settings({"INGEST_DEDUP_TTL": "two weeks"})
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        load_settings({"LOG_FORMAT": "xml"})
    with pytest.raises(SettingsError, match="INGEST_DEDUP_INDEX_BUCKETS"):
        load_settings({"INGEST_DEDUP_INDEX_BUCKETS": "100000"})


def test_readme_documents_every_setting_with_its_default() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    base = defaults()
    for name in Settings.model_fields:
        var = env_var(name)
        value = base[name]
        default = "unset" if value is None else str(value).lower()
        row = re.search(rf"^\| `{var}` \| `([^`]*)` \|", readme, re.MULTILINE)
        assert row, f"README lacks a settings row for {var}"
        assert row.group(1).lower() == default, f"{var}: README says {row.group(1)!r}"

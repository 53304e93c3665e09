import os
from pathlib import Path

import pytest

from config.settings import load_settings
from pipelines.rules import RuleError, load_rules, rules_from_dir

PACKS = load_settings({}).boilerplate_dir


def write_pack(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def test_shipped_packs_load_and_every_rule_has_a_reason() -> None:
    rules = rules_from_dir(PACKS).rules
    assert len(rules) >= 10
    ids = [rule.id for rule in rules]
    assert len(ids) == len(set(ids))
    for rule in rules:
        assert rule.reason and rule.id.startswith(rule.pack + ".")


@pytest.mark.parametrize(
    ("rule_id", "line", "captured"),
    [
        ("aggregator.go-to-source", "Go to Source", {}),
        (
            "aggregator.go-to-source",
            "Go to Source: https://example.org/a?b=1",
            {"original_url": "https://example.org/a?b=1"},
        ),
        ("aggregator.author-footer", "Author: Tyler Durden", {"author": "Tyler Durden"}),
        ("wpdiscuz.rating-votes", "0 0 votes", {}),
        ("wpdiscuz.rating-votes", "4.5 12 votes", {}),
        ("wpdiscuz.article-rating", "Article Rating", {}),
        ("wpdiscuz.inline-feedbacks", "Inline Feedbacks", {}),
        ("wpdiscuz.inline-feedbacks", "3 Inline Feedbacks", {}),
        ("wpdiscuz.view-all-comments", "View all comments", {}),
        ("article.byline-by", "By Jane van Dam", {"author": "Jane van Dam"}),
        ("article.dateline-us", "Mon, 02/03/2020 – 20:25", {"published_at": "02/03/2020 – 20:25"}),
        ("article.dateline-us", "02/03/2020", {"published_at": "02/03/2020"}),
    ],
)
def test_rule_matches(rule_id: str, line: str, captured: dict[str, str]) -> None:
    rule = next(r for r in rules_from_dir(PACKS).rules if r.id == rule_id)
    assert rule.match(line) == captured


@pytest.mark.parametrize(
    ("rule_id", "line"),
    [
        ("aggregator.go-to-source", "We had to go to source material for this."),
        ("wpdiscuz.rating-votes", "The bill passed 52 48 votes short of a majority"),
        ("article.byline-by", "By the end of the day the talks had failed"),
        ("article.dateline-us", "On 02/03/2020 the army advanced."),
    ],
)
def test_rule_leaves_prose_alone(rule_id: str, line: str) -> None:
    rule = next(r for r in rules_from_dir(PACKS).rules if r.id == rule_id)
    assert rule.match(line) is None


GOOD_RULE = """
  - id: demo.x
    reason: a reason long enough
    where: tail
    pattern: 'x'
"""


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "pack: demo\ndescription: d\nrules:\n  - id: demo.x\n    reason: short\n"
            "    where: tail\n    pattern: x\n",
            "at least 10",
        ),
        (
            "pack: demo\ndescription: d\nrules:\n  - id: demo.x\n    reason: a good reason\n"
            "    where: middle\n    pattern: x\n",
            "where",
        ),
        (
            "pack: demo\ndescription: d\nrules:\n  - id: demo.x\n    reason: a good reason\n"
            "    where: tail\n    pattern: '(?P<author>.+)'\n",
            "captures",
        ),
        (
            "pack: demo\ndescription: d\nrules:\n  - id: demo.x\n    reason: a good reason\n"
            "    where: tail\n    pattern: '(?P<published_at>.+)'\n    captures: [published_at]\n",
            "time_formats",
        ),
        (
            "pack: demo\ndescription: d\nrules:\n  - id: demo.x\n    reason: a good reason\n"
            "    where: tail\n    pattern: '('\n",
            "bad pattern",
        ),
        (
            "pack: demo\ndescription: d\nrules:\n  - id: demo.x\n    reason: a good reason\n"
            "    where: tail\n",
            "exactly one",
        ),
        ("pack: demo\n  bad: [yaml\n", "not valid YAML"),
    ],
)
def test_invalid_packs_are_refused_with_the_file_named(
    tmp_path: Path, body: str, message: str
) -> None:
    path = write_pack(tmp_path, "demo", body)
    with pytest.raises(RuleError, match=message) as info:
        load_rules([path])
    assert str(path) in str(info.value)


def test_rule_ids_are_unique_across_packs(tmp_path: Path) -> None:
    write_pack(tmp_path, "a", "pack: a\ndescription: d\nrules:" + GOOD_RULE)
    write_pack(tmp_path, "b", "pack: b\ndescription: d\nrules:" + GOOD_RULE)
    with pytest.raises(RuleError, match=r"'demo\.x' is in both a and b"):
        load_rules([tmp_path])


def test_an_edited_pack_takes_effect_without_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipelines.rules.RECHECK_SECONDS", 0.0)
    write_pack(tmp_path, "demo", "pack: demo\ndescription: d\nrules:" + GOOD_RULE)
    assert [r.id for r in rules_from_dir(tmp_path).rules] == ["demo.x"]
    path = write_pack(
        tmp_path, "demo", "pack: demo\ndescription: d\nrules:" + GOOD_RULE.replace("x", "y")
    )
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert [r.id for r in rules_from_dir(tmp_path).rules] == ["demo.y"]


def test_a_broken_edit_keeps_the_last_good_packs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pipelines.rules.RECHECK_SECONDS", 0.0)
    path = write_pack(tmp_path, "demo", "pack: demo\ndescription: d\nrules:" + GOOD_RULE)
    good = rules_from_dir(tmp_path)
    path.write_text("pack: demo\ndescription: d\nrules:\n  - id: broken\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert rules_from_dir(tmp_path) is good


def test_a_broken_pack_at_first_load_is_an_error(tmp_path: Path) -> None:
    write_pack(tmp_path, "demo", "pack: demo\ndescription: d\nrules:\n  - id: broken\n")
    with pytest.raises(RuleError, match=r"demo\.yaml"):
        rules_from_dir(tmp_path)

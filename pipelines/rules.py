"""Boilerplate rules: declarative packs loaded from YAML (``config/boilerplate/*.yaml``).

A pack is a file::

    pack: aggregator
    description: what the pack is about
    rules:
      - id: aggregator.author-footer          # unique across all packs
        reason: why this line is boilerplate    # shown by `ingest rules list`
        where: tail                             # head | tail | edges | any
        pattern: 'author:\\s*(?P<author>.+)'     # a line matches when the whole line matches
        captures: [author]                      # fields filled from named groups

A rule matches a whole line either by ``pattern`` (a regular expression, case-insensitive
unless ``case_sensitive: true``) or by ``equals_field`` (the line repeats the document's
``title`` or ``author``, compared in match form). ``where`` says which lines it may
remove: ``head`` (the lines before the body starts), ``tail`` (the trailing lines after
it ends), ``edges`` (either) or ``any`` line. A ``published_at`` capture needs
``time_formats`` (strptime formats, tried in order, after dashes and spaces in the value
are normalized).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

log = structlog.get_logger("pipelines.rules")

Where = Literal["head", "tail", "edges", "any"]
CaptureField = Literal["author", "published_at", "original_url", "title"]


class RuleError(ValueError):
    """A rule pack is invalid; the message names the file and the rule."""


class Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*(\.[a-z0-9][a-z0-9-]*)+$")
    reason: str = Field(min_length=10)
    where: Where
    pattern: str | None = None
    equals_field: Literal["title", "author"] | None = None
    captures: list[CaptureField] = Field(default_factory=list)
    time_formats: list[str] = Field(default_factory=list)
    case_sensitive: bool = False
    pack: str = ""

    @model_validator(mode="after")
    def _check(self) -> Rule:
        if (self.pattern is None) == (self.equals_field is None):
            raise ValueError("give exactly one of 'pattern' and 'equals_field'")
        if self.pattern is not None:
            try:
                regex = self.regex
            except re.error as exc:
                raise ValueError(f"bad pattern: {exc}") from exc
            groups = set(regex.groupindex) if regex else set()
            if groups != set(self.captures):
                raise ValueError(
                    f"named groups {sorted(groups)} must be exactly the captures "
                    f"{sorted(self.captures)}"
                )
        elif self.captures:
            raise ValueError("an 'equals_field' rule captures nothing")
        if "published_at" in self.captures and not self.time_formats:
            raise ValueError("a published_at capture needs time_formats")
        return self

    @property
    def regex(self) -> re.Pattern[str] | None:
        if self.pattern is None:
            return None
        return _compile(self.pattern, self.case_sensitive)

    def match(self, line: str) -> dict[str, str] | None:
        """The captured groups when the whole ``line`` matches, else None. Only for
        pattern rules; ``equals_field`` rules are matched by the cleaner."""
        assert self.regex is not None, "equals_field rules are matched by the cleaner"
        return _whole_line_groups(self.regex, line)


@lru_cache(maxsize=1024)
def _compile(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    return re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Matcher:
    """A validated rule ready to run on many lines (plain attributes, compiled regex)."""

    rule_id: str
    regex: re.Pattern[str] | None
    equals_field: str | None
    time_formats: tuple[str, ...]

    @classmethod
    def of(cls, rule: Rule) -> Matcher:
        return cls(rule.id, rule.regex, rule.equals_field, tuple(rule.time_formats))

    def match(self, line: str) -> dict[str, str] | None:
        assert self.regex is not None
        return _whole_line_groups(self.regex, line)


def _whole_line_groups(regex: re.Pattern[str], line: str) -> dict[str, str] | None:
    found = regex.fullmatch(line)
    return None if found is None else {k: v for k, v in found.groupdict().items() if v}


class RulePack(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    pack: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str
    rules: list[Rule]


@dataclass(frozen=True)
class RuleSet:
    packs: tuple[RulePack, ...]
    _matchers: dict[tuple[Where, ...], tuple[Matcher, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def rules(self) -> list[Rule]:
        return [rule for pack in self.packs for rule in pack.rules]

    def matchers(self, *wheres: Where) -> tuple[Matcher, ...]:
        """The rules that apply at ``wheres``, in pack order, ready to run."""
        found = self._matchers.get(wheres)
        if found is None:
            found = tuple(Matcher.of(r) for r in self.rules if r.where in wheres)
            self._matchers[wheres] = found
        return found


def _load_pack(path: Path) -> RulePack:
    try:
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        if not isinstance(data, dict):
            raise RuleError(f"{path}: a pack is a mapping with pack, description, rules")
        pack_name = data.get("pack", path.stem)
        for rule in data.get("rules") or []:
            if isinstance(rule, dict):
                rule.setdefault("pack", pack_name)
        return RulePack.model_validate(data)
    except yaml.YAMLError as exc:
        raise RuleError(f"{path}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors()
        )
        raise RuleError(f"{path}: {problems}") from exc


def load_rules(paths: Iterable[Path]) -> RuleSet:
    """Load packs from YAML files and folders of them (name order), checking that rule
    ids are unique across packs."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    packs = tuple(_load_pack(file) for file in files)
    seen: dict[str, str] = {}
    for pack in packs:
        for rule in pack.rules:
            if rule.id in seen:
                raise RuleError(f"rule id {rule.id!r} is in both {seen[rule.id]} and {pack.pack}")
            seen[rule.id] = pack.pack
    return RuleSet(packs)


@lru_cache(maxsize=8)
def _cached_rules(directory: Path, stamp: tuple[tuple[str, int], ...]) -> RuleSet:
    return load_rules([directory])


_last_check: dict[Path, tuple[float, RuleSet]] = {}
_broken: dict[Path, tuple[tuple[str, int], ...]] = {}
RECHECK_SECONDS = 2.0


def rules_from_dir(directory: Path) -> RuleSet:
    """The packs in ``directory``, loaded once per process and again when a file there
    changes (an edited pack takes effect without restarting the worker; the folder is
    looked at no more than every ``RECHECK_SECONDS``)."""
    now = time.monotonic()
    checked = _last_check.get(directory)
    if checked and now - checked[0] < RECHECK_SECONDS:
        return checked[1]
    stamp = tuple((p.name, p.stat().st_mtime_ns) for p in sorted(directory.glob("*.yaml")))
    try:
        rules = _cached_rules(directory, stamp)
    except RuleError as exc:
        if checked is None:
            raise  # nothing loaded yet: the caller must know
        # A broken edit must not stop the worker: keep the last good packs until fixed.
        if _broken.get(directory) != stamp:
            _broken[directory] = stamp
            log.error(
                "rules.reload_failed",
                directory=str(directory),
                error=str(exc),
                keeping="the last packs that loaded",
            )
        rules = checked[1]
    _last_check[directory] = (now, rules)
    return rules

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

Two kinds of rule:

* **Line rules** (``where: head | tail | edges | any``) match a whole line of text — of
  a plain-text seed, of a feed entry, of an extracted page alike — either by ``pattern``
  (a regular expression, case-insensitive unless ``case_sensitive: true``; named groups
  are its ``captures``) or by ``equals_field`` (the line repeats the document's ``title``
  or ``author``, compared in match form). ``where`` says which lines it may remove:
  ``head`` (the lines before the body starts), ``tail`` (the trailing lines after it
  ends), ``edges`` (either) or ``any`` line. A ``published_at`` capture needs
  ``time_formats`` (strptime formats, tried in order, after dashes and spaces in the
  value are normalized).
* **HTML rules** (``where: html``) remove the elements a CSS ``selector`` (or an
  ``xpath``) finds in an HTML fragment or page, before the article is extracted;
  ``text`` (a regular expression) narrows them to elements whose whole text matches;
  ``captures`` maps a field to what the element gives: ``text`` or an ``@attribute``
  (``{original_url: "@href"}``).

The valve: a rule that would remove more than ``max_share`` of the document's text (the
``rule_max_share`` setting unless the rule sets its own) is skipped and logged.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import structlog
import yaml
from cssselect import HTMLTranslator, SelectorError
from cssselect import parse as parse_css
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

log = structlog.get_logger("pipelines.rules")

Where = Literal["head", "tail", "edges", "any", "html"]
LineWhere = Literal["head", "tail", "edges", "any"]
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
    selector: str | None = None
    xpath: str | None = None
    text: str | None = None
    captures: list[CaptureField] | dict[CaptureField, str] = Field(default_factory=list)
    time_formats: list[str] = Field(default_factory=list)
    case_sensitive: bool = False
    # "suffix": the pattern matches the end of the article's last line and only that end
    # is cut ("… Continue reading →", "[…]"); the line goes if nothing is left of it.
    part: Literal["line", "suffix"] = "line"
    max_share: float | None = Field(None, gt=0, le=1)
    # html rules: strings one of which the markup must contain (lower-cased) for the rule
    # to be worth running; a cheap look before the XPath.
    hints: list[str] = Field(default_factory=list)
    pack: str = ""

    @model_validator(mode="after")
    def _check(self) -> Rule:
        if self.where == "html":
            return self._check_html()
        if self.selector or self.xpath or self.text:
            raise ValueError("'selector', 'xpath' and 'text' belong to 'where: html' rules")
        if isinstance(self.captures, dict):
            raise ValueError("a line rule's captures are a list of its named groups")
        if (self.pattern is None) == (self.equals_field is None):
            raise ValueError("give exactly one of 'pattern' and 'equals_field'")
        if self.part == "suffix" and (self.where != "tail" or self.pattern is None):
            raise ValueError("a 'part: suffix' rule is a 'where: tail' rule with a 'pattern'")
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

    def _check_html(self) -> Rule:
        if (self.selector is None) == (self.xpath is None):
            raise ValueError("an html rule gives exactly one of 'selector' and 'xpath'")
        if self.pattern is not None or self.equals_field is not None:
            raise ValueError("an html rule has no 'pattern' or 'equals_field' (use 'text')")
        if isinstance(self.captures, list) and self.captures:
            raise ValueError("an html rule's captures map a field to 'text' or '@attribute'")
        for name, source in dict(self.captures).items():
            if source != "text" and not re.fullmatch(r"@[\w:-]+", source):
                raise ValueError(f"capture {name}: {source!r} is neither 'text' nor '@attribute'")
        if "published_at" in dict(self.captures) and not self.time_formats:
            raise ValueError("a published_at capture needs time_formats")
        try:
            self.element_xpath  # noqa: B018 - compiling is the check
            if self.text is not None:
                _compile(self.text, self.case_sensitive)
        except (re.error, etree.XPathSyntaxError, SelectorError) as exc:
            raise ValueError(f"bad selector, xpath or text: {exc}") from exc
        return self

    @property
    def element_xpath(self) -> etree.XPath:
        return _element_xpath(self.selector, self.xpath)

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


@lru_cache(maxsize=1024)
def _element_xpath(selector: str | None, xpath: str | None) -> etree.XPath:
    if selector is not None:
        xpath = HTMLTranslator().css_to_xpath(selector)
    assert xpath is not None
    return etree.XPath(xpath)


Need = tuple[str, str]  # ("tag" | "class" | "id" | "class~", name): what a match requires


@dataclass(frozen=True, slots=True)
class PageFeatures:
    """The classes and ids a document has (two XPath queries): a rule whose selector needs
    a class or id the document lacks is not run at all (most feed entries carry none of
    the widgets, and evaluating a rule's XPath costs more than this look-up). Rules that
    only need a tag always run."""

    classes: frozenset[str]
    ids: frozenset[str]
    class_text: str

    @classmethod
    def of(cls, root: Any) -> PageFeatures:
        classes = root.xpath("descendant-or-self::*/@class")
        ids = root.xpath("descendant-or-self::*/@id")
        return cls(
            frozenset(name for value in classes for name in value.split()),
            frozenset(str(value) for value in ids),
            " ".join(classes),
        )

    def has(self, need: Need) -> bool:
        kind, name = need
        if kind == "class":
            return name in self.classes
        if kind == "id":
            return name in self.ids
        if kind == "class~":
            return name in self.class_text
        return True  # a tag: assumed present


def selector_needs(selector: str) -> tuple[Need, ...] | None:
    """For each alternative of a CSS selector, one thing its match must have (taken from
    its last compound: an id, a class, a class substring, else the tag). None when some
    alternative needs nothing we can check: the rule then always runs."""
    needs: list[Need] = []
    for alternative in parse_css(selector):
        need = _need_of(alternative.parsed_tree)
        if need is None:
            return None
        needs.append(need)
    return tuple(needs)


def _need_of(node: Any) -> Need | None:
    if type(node).__name__ == "CombinedSelector":
        return _need_of(node.subselector)
    found: Need | None = None
    while node is not None:
        kind = type(node).__name__
        if kind == "Hash":
            return ("id", node.id)
        if kind == "Class":
            found = found or ("class", node.class_name)
        elif kind == "Attrib" and node.attrib == "class" and node.operator in ("*=", "^=", "~="):
            found = found or ("class~", node.value.value)
        elif kind == "Element" and node.element and node.element != "*" and found is None:
            found = ("tag", node.element.lower())
        node = getattr(node, "selector", None)
    return found


@dataclass(frozen=True, slots=True)
class HtmlMatcher:
    """A validated html rule ready to run: its compiled XPath and text pattern."""

    rule_id: str
    xpath: etree.XPath
    text: re.Pattern[str] | None
    captures: tuple[tuple[str, str], ...]
    time_formats: tuple[str, ...]
    max_share: float | None
    needs: tuple[Need, ...] | None = None
    hints: tuple[str, ...] = ()

    @classmethod
    def of(cls, rule: Rule) -> HtmlMatcher:
        text = _compile(rule.text, rule.case_sensitive) if rule.text is not None else None
        needs = selector_needs(rule.selector) if rule.selector is not None else None
        return cls(
            rule.id,
            rule.element_xpath,
            text,
            tuple(dict(rule.captures).items()),
            tuple(rule.time_formats),
            rule.max_share,
            needs,
            tuple(hint.lower() for hint in rule.hints),
        )

    def may_match(self, features: PageFeatures, markup: str, text: Callable[[], str]) -> bool:
        """False when the document cannot hold a match (so the XPath need not run): a
        hint is looked for in the lower-cased markup, then in the document's text
        (lower-cased, spaces of any kind made one), where entities and tags are gone."""
        if self.hints and not any(hint in markup for hint in self.hints):
            plain = text()
            if not any(hint in plain for hint in self.hints):
                return False
        return self.needs is None or any(features.has(need) for need in self.needs)


@dataclass(frozen=True, slots=True)
class Matcher:
    """A validated rule ready to run on many lines (plain attributes, compiled regex)."""

    rule_id: str
    regex: re.Pattern[str] | None
    equals_field: str | None
    time_formats: tuple[str, ...]
    max_share: float | None = None
    suffix: re.Pattern[str] | None = None  # for part: suffix rules

    @classmethod
    def of(cls, rule: Rule) -> Matcher:
        suffix = None
        if rule.part == "suffix" and rule.pattern is not None:
            suffix = _compile(rf"(?:{rule.pattern})\s*$", rule.case_sensitive)
        return cls(
            rule.id, rule.regex, rule.equals_field, tuple(rule.time_formats), rule.max_share, suffix
        )

    def match(self, line: str) -> dict[str, str] | None:
        assert self.regex is not None
        return _whole_line_groups(self.regex, line)

    def cut_suffix(self, line: str) -> tuple[str, dict[str, str]] | None:
        """For a suffix rule: the line without its matching end, and the captures."""
        assert self.suffix is not None
        found = self.suffix.search(line)
        if found is None:
            return None
        return line[: found.start()], {k: v for k, v in found.groupdict().items() if v}


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
    _html: list[tuple[HtmlMatcher, ...]] = field(default_factory=list, compare=False, repr=False)

    @property
    def rules(self) -> list[Rule]:
        return [rule for pack in self.packs for rule in pack.rules]

    def html_matchers(self) -> tuple[HtmlMatcher, ...]:
        """The html rules, in pack order, ready to run."""
        if not self._html:
            self._html.append(tuple(HtmlMatcher.of(r) for r in self.rules if r.where == "html"))
        return self._html[0]

    def matchers(self, *wheres: LineWhere) -> tuple[Matcher, ...]:
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


_DASHES = re.compile(r"\s*[-‐‑‒–—―]\s*")
_SPACE_RUNS = re.compile(r"\s+")
_ABBREVIATION_DOT = re.compile(r"\b([A-Za-z]{3,4})\.")
_MERIDIEM = re.compile(r"\b([ap])\.?m\.?(?=\s|$)", re.IGNORECASE)


def parse_captured_time(value: str, formats: list[str], default_tz: tzinfo) -> datetime | None:
    """Parse a captured dateline with the rule's formats. First any dash becomes "-",
    runs of spaces one space, "Nov." "Nov", "Sept" "Sep" and "p.m." "PM", so the usual
    ways of writing a date read alike. A dateline carries no zone: it is taken in
    ``default_tz``; the result is UTC."""
    text = _SPACE_RUNS.sub(" ", _DASHES.sub(" - ", value)).strip()
    text = _ABBREVIATION_DOT.sub(r"\1", text).replace("Sept ", "Sep ").replace("sept ", "sep ")
    text = _MERIDIEM.sub(lambda m: m.group(1).upper() + "M", text)
    for fmt in formats:
        try:
            naive = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return naive.replace(tzinfo=default_tz).astimezone(UTC)
    return None

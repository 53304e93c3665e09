"""Remove boilerplate lines from a parsed document, capturing what they tell.

The rules are data (:mod:`pipelines.rules`). The cleaner walks the block list three
times:

1. from the end, removing trailing lines that ``tail``/``edges``/``any`` rules match,
   until the first line none matches (the article's last line);
2. from the start, the same with ``head``/``edges``/``any`` rules;
3. over what is left, removing lines that ``any`` rules match.

Walking the tail first lets a footer's capture ("Author: X") identify a bare byline
("X") that stands before it. Captured values fill only empty fields: what the document
says in its metadata wins over what its boilerplate says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo

from pipelines.parse import Block, Metadata, ParsedDocument
from pipelines.rules import Matcher, RuleSet
from pipelines.text import match_form

_DASHES = re.compile(r"\s*[-‐‑‒–—―]\s*")
_SPACE_RUNS = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Removal:
    """One line a rule removed, and what it captured (for ``ingest clean --explain``)."""

    rule_id: str
    position: int
    text: str
    captured: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CleanResult:
    meta: Metadata
    blocks: list[Block]
    removals: list[Removal]
    line_joiner: str = " "

    @property
    def removed_rule_ids(self) -> list[str]:
        """Ids of the rules that fired, each once, in document order."""
        return list(dict.fromkeys(r.rule_id for r in sorted(self.removals, key=_position)))


def _position(removal: Removal) -> int:
    return removal.position


class _Cleaner:
    def __init__(self, parsed: ParsedDocument, rules: RuleSet, default_tz: tzinfo) -> None:
        self.meta = parsed.meta
        self.blocks = parsed.blocks
        self.keep = [True] * len(parsed.blocks)
        self.removals: list[Removal] = []
        self.rules = rules
        self.default_tz = default_tz

    def same_as_field(self, line: str, name: str) -> bool:
        value = getattr(self.meta, name)
        # Cheap length test first: match_form is only needed for near-equal lengths.
        if not value or abs(len(value) - len(line)) > len(value) // 4 + 3:
            return False
        return match_form(line) == match_form(value)

    def first_match(self, rules: tuple[Matcher, ...], index: int) -> bool:
        line = self.blocks[index].text
        for rule in rules:
            if rule.equals_field is not None:
                if not self.same_as_field(line, rule.equals_field):
                    continue
                captured: dict[str, str] = {}
            else:
                found = rule.match(line)
                if found is None:
                    continue
                captured = found
            self.keep[index] = False
            self.removals.append(Removal(rule.rule_id, index, line, captured))
            if captured:
                self.capture(rule, captured)
            return True
        return False

    def capture(self, rule: Matcher, captured: dict[str, str]) -> None:
        values: dict[str, object] = dict(captured)
        if "published_at" in captured:
            values["published_at"] = parse_dateline(
                captured["published_at"], list(rule.time_formats), self.default_tz
            )
        self.meta = self.meta.fill(**values)

    def run(self) -> CleanResult:
        count = len(self.blocks)
        tail_rules = self.rules.matchers("tail", "edges", "any")
        end = count
        while end > 0 and self.first_match(tail_rules, end - 1):
            end -= 1
        head_rules = self.rules.matchers("head", "edges", "any")
        start = 0
        while start < end and self.first_match(head_rules, start):
            start += 1
        anywhere = self.rules.matchers("any")
        if anywhere:
            for index in range(start, end):
                self.first_match(anywhere, index)
        kept = [block for block, keep in zip(self.blocks, self.keep, strict=True) if keep]
        return CleanResult(self.meta, kept, self.removals)


def clean(parsed: ParsedDocument, rules: RuleSet, *, default_tz: tzinfo) -> CleanResult:
    result = _Cleaner(parsed, rules, default_tz).run()
    return replace(result, line_joiner=parsed.line_joiner)


def parse_dateline(value: str, formats: list[str], default_tz: tzinfo) -> datetime | None:
    """Parse a captured dateline with the rule's formats. Any dash becomes "-" and runs
    of spaces one space first, so "02/03/2020 – 20:25" and "02/03/2020 - 20:25" read
    alike. A dateline carries no zone: it is taken in ``default_tz``; the result is UTC."""
    text = _SPACE_RUNS.sub(" ", _DASHES.sub(" - ", value)).strip()
    for fmt in formats:
        try:
            naive = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return naive.replace(tzinfo=default_tz).astimezone(UTC)
    return None

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
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import tzinfo

import structlog

from pipelines.html import VALVE_MIN_CHARS
from pipelines.parsed import Block, Metadata, ParsedDocument, Removal
from pipelines.rules import Matcher, RuleSet, parse_captured_time
from pipelines.text import match_form

log = structlog.get_logger("pipelines.clean")

# How pages join a title and the site's name.
_TITLE_SEPARATORS = re.compile(r"\s+[|–—-]\s+|\s+::\s+|\s+»\s+")


@dataclass(frozen=True, slots=True)
class CleanResult:
    meta: Metadata
    blocks: list[Block]
    removals: list[Removal]  # html rules first (in the order they ran), then line rules
    line_joiner: str = " "
    # Markup of the paragraphs that kept all their lines whole (from ParsedDocument).
    paragraph_html: dict[int, str] = field(default_factory=dict)
    trimmed: frozenset[int] = frozenset()

    @property
    def removed_rule_ids(self) -> list[str]:
        """Ids of the rules that fired, each once: html rules in the order they ran, then
        line rules in document order. Rules the valve held back are not listed."""
        fired = [r for r in self.removals if not r.skipped]
        ordered = [r for r in fired if r.position < 0] + sorted(
            (r for r in fired if r.position >= 0), key=lambda r: r.position
        )
        return list(dict.fromkeys(r.rule_id for r in ordered))


class _Cleaner:
    def __init__(
        self, parsed: ParsedDocument, rules: RuleSet, default_tz: tzinfo, held: frozenset[str]
    ) -> None:
        self.meta = parsed.meta
        self.blocks = list(parsed.blocks)
        self.keep = [True] * len(parsed.blocks)
        self.trimmed: set[int] = set()  # paragraphs whose last line lost its end
        self.removals: list[Removal] = []
        self.rules = rules
        self.default_tz = default_tz
        self.held = held  # rules the valve holds back

    def same_as_field(self, line: str, name: str) -> bool:
        """The line repeats the field: the same words, or (for a title) the title without
        the site name that pages append ("Title | Site", "Title - Site")."""
        value = getattr(self.meta, name)
        if not value or len(line) > len(value) + 3 or len(line) < 0.5 * len(value):
            return False  # cheap length test first: match_form only for near-equal lengths
        form = match_form(line)
        if form == match_form(value):
            return True
        if name != "title" or len(line) < 12:
            return False
        parts = _TITLE_SEPARATORS.split(value)
        return len(parts) > 1 and any(form == match_form(part) for part in parts)

    def first_match(self, rules: tuple[Matcher, ...], index: int) -> bool:
        """Apply the first rule that matches line ``index``: True when the line went.
        Suffix rules cut the line's end, again and again while one still matches ("…
        here […] Continue reading →" loses both tails)."""
        cutters = [r for r in rules if r.suffix is not None and r.rule_id not in self.held]
        trimmed = False
        while self.keep[index] and any(self.cut(rule, index) for rule in cutters):
            trimmed = True
        if trimmed:
            return not self.keep[index]
        line = self.blocks[index].text
        for rule in rules:
            if rule.rule_id in self.held or rule.suffix is not None:
                continue
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

    def cut(self, rule: Matcher, index: int) -> bool:
        """A suffix rule on the article's last line: cut the matching end (the whole line
        if nothing is left). True when it cut something."""
        block = self.blocks[index]
        found = rule.cut_suffix(block.text)
        if found is None:
            return False
        rest, captured = found
        cut_text = block.text[len(rest) :].strip()
        rest = rest.rstrip(" ,;:–—-")
        self.removals.append(Removal(rule.rule_id, index, cut_text, captured))
        if rest:
            self.blocks[index] = replace(block, text=rest)
            self.trimmed.add(block.paragraph)
        else:
            self.keep[index] = False
        if captured:
            self.capture(rule, captured)
        return True

    def capture(self, rule: Matcher, captured: dict[str, str]) -> None:
        values: dict[str, object] = dict(captured)
        if "published_at" in captured:
            values["published_at"] = parse_captured_time(
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
        return CleanResult(self.meta, kept, self.removals, trimmed=frozenset(self.trimmed))


def clean(
    parsed: ParsedDocument, rules: RuleSet, *, default_tz: tzinfo, max_share: float = 1.0
) -> CleanResult:
    """Apply the line rules. The valve: a rule whose removals add up to more than its
    share of the text (``max_share`` unless it sets its own) is held back — the lines go
    through again without it — and logged; it is listed with ``skipped`` set."""
    total = sum(len(block.text) for block in parsed.blocks) or 1
    held: set[str] = set()
    limits = {m.rule_id: m.max_share for m in rules.matchers("tail", "edges", "any", "head")}
    while True:
        result = _Cleaner(parsed, rules, default_tz, frozenset(held)).run()
        removed: dict[str, int] = {}
        for removal in result.removals:
            removed[removal.rule_id] = removed.get(removal.rule_id, 0) + len(removal.text)
        eager = {
            rule
            for rule, chars in removed.items()
            if chars >= VALVE_MIN_CHARS and chars / total > (limits.get(rule) or max_share)
        }
        if not eager:
            break
        for rule in sorted(eager):
            log.warning(
                "rule.valve",
                rule=rule,
                share=round(removed[rule] / total, 2),
                limit=limits.get(rule) or max_share,
                chars=removed[rule],
            )
        held |= eager
    skipped = [Removal(rule, -1, "", skipped=True) for rule in sorted(held)]
    before = Counter(b.paragraph for b in parsed.blocks)
    after = Counter(b.paragraph for b in result.blocks)
    whole = {p for p, lines in after.items() if lines == before[p] and p not in result.trimmed}
    return replace(
        result,
        removals=[*parsed.removals, *skipped, *result.removals],
        line_joiner=parsed.line_joiner,
        paragraph_html={p: html for p, html in parsed.paragraph_html.items() if p in whole},
    )

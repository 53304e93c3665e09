"""Cleaning quality and speed on a public benchmark, beside trafilatura.

Reads the Zyte/Scrapinghub article-extraction-benchmark (181 gzipped pages and
``ground-truth.json``, MIT) in place — by default ``../shared/corpus/article-extraction-benchmark``
next to the repository — and, in one run, on the same pages:

* scores our cleaner (``process_document`` on each page), plain ``trafilatura.extract`` and
  ``trafilatura.extract(fast=True)`` with the benchmark's own metric (see :func:`match`):
  precision, recall, F1, exact-match accuracy, pages per second of CPU (``time.process_time``
  around the extraction alone, fastest of ``--repeat`` passes, after one untimed warm-up call),
  speed relative to trafilatura (fast), and how many pages gave no text or raised;
* builds ~300 feed-sized HTML fragments (5–20 KB: ground-truth paragraphs in ``<p>``, ``<h2>``,
  ``<ul><li>``, ``<a>``, ``<em>``, followed by WordPress/FeedBurner feed boilerplate) and measures
  docs per CPU second for our cleaner on them as feed entries, beside the floor (one lxml parse
  and a text walk) and trafilatura (fast), with the same metric against the fragments' text.

Run from the repository root::

    .venv/bin/python bench/clean_eval.py                 # everything (~1 minute)
    .venv/bin/python bench/clean_eval.py --limit 30 --repeat 1 --only feed-ingest
    .venv/bin/python bench/clean_eval.py --only feed-ingest --worst 15 --json /tmp/eval.json
    .venv/bin/python bench/clean_eval.py --self-test     # check the metric on a worked example

Where we are heading: F1 ≥ 0.97 (best published: 0.970) at no less than trafilatura (fast)'s
speed; ≥ 1,500 feed fragments per CPU second.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import html as html_lib
import itertools
import json
import math
import platform
import random
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "article-extraction-benchmark"

OURS = "feed-ingest"
TRAFILATURA = "trafilatura"
TRAFILATURA_FAST = "trafilatura (fast)"
LXML_FLOOR = "lxml floor"
OURS_NO_RULES = "feed-ingest (no rules)"
TRAFILATURA_AS_OURS = "trafilatura (fast, recall)"
# The last two isolate what our packs and our settings add: the same cleaner with an
# empty rule set, and trafilatura run the way we run it (fast, favor_recall).
PAGE_EXTRACTORS = (OURS, TRAFILATURA, TRAFILATURA_FAST, OURS_NO_RULES, TRAFILATURA_AS_OURS)
FRAGMENT_EXTRACTORS = (OURS, LXML_FLOOR, TRAFILATURA_FAST)

FRAGMENT_MIN = 5 * 1024
FRAGMENT_MAX = 20 * 1024
FRAGMENT_SEED = 20191121
FRAGMENT_URL = "https://example.org/post"


# --- The benchmark's metric ------------------------------------------------------------------
#
# As published with the benchmark (its evaluate.py): tokens are runs of ``\w``; each text
# becomes the multiset of its consecutive 4-token shingles; per page tp/fp/fn count shared,
# extra and missing shingles, normalized to sum to 1 so that long pages weigh no more than
# short ones. Precision is averaged over pages that have tp + fp > 0, recall over pages that
# have tp + fn > 0, and F1 is the harmonic mean of the two averages (not a mean of F1s).

TOKEN = re.compile(r"\w+")
SHINGLE = 4


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


def shingles(text: str, size: int = SHINGLE) -> Counter[tuple[str, ...]]:
    """The multiset of ``size``-token shingles; a shorter text is one shingle of what it has."""
    toks = tokens(text)
    if not toks:
        return Counter()
    return Counter(tuple(toks[i : i + size]) for i in range(max(1, len(toks) - size + 1)))


@dataclass(frozen=True, slots=True)
class Match:
    """Shared (tp), extra (fp) and missing (fn) shingles of one page, normalized to sum 1
    (all 0 when both texts are empty)."""

    tp: float
    fp: float
    fn: float

    @property
    def precision(self) -> float:
        if self.fp == self.fn == 0:
            return 1.0
        if self.tp == self.fp == 0:
            return 0.0
        return self.tp / (self.tp + self.fp)

    @property
    def recall(self) -> float:
        if self.fp == self.fn == 0:
            return 1.0
        if self.tp == self.fn == 0:
            return 0.0
        return self.tp / (self.tp + self.fn)

    @property
    def f1(self) -> float:
        """This page's own F1 (for ranking pages; the benchmark's F1 is not a mean of these)."""
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def match(true: str, pred: str) -> Match:
    truth, predicted = shingles(true), shingles(pred)
    tp = sum((truth & predicted).values())
    fp = sum((predicted - truth).values())
    fn = sum((truth - predicted).values())
    total = tp + fp + fn
    return Match(tp / total, fp / total, fn / total) if total else Match(0.0, 0.0, 0.0)


@dataclass(frozen=True, slots=True)
class Scores:
    precision: float
    recall: float
    f1: float
    exact: float  # share of pages whose tokens equal the truth's (the README's "accuracy")


def score(matches: Sequence[Match], exact: Sequence[bool]) -> Scores:
    precisions = [m.precision for m in matches if m.tp + m.fp > 0]
    recalls = [m.recall for m in matches if m.tp + m.fn > 0]
    p = statistics.fmean(precisions) if precisions else 0.0
    r = statistics.fmean(recalls) if recalls else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return Scores(p, r, f1, statistics.fmean(exact) if exact else 0.0)


def self_test() -> None:
    """The metric on a worked example, computed by hand."""
    assert tokens("Hello, world! it's 2019") == ["Hello", "world", "it", "s", "2019"]
    assert shingles("a b") == Counter({("a", "b"): 1})
    assert shingles("  ,; ") == Counter()
    # Page 1: {abcd, bcde} vs {abcd, bcdx}: tp 1, fp 1, fn 1 → P = R = 1/2.
    m1 = match("a b c d e", "a b c d x")
    assert math.isclose(m1.tp, 1 / 3) and m1.precision == m1.recall == 0.5
    # Page 2: nothing extracted → tp = fp = 0: left out of precision, recall 0.
    m2 = match("one two three", "")
    assert (m2.tp, m2.fp, m2.fn) == (0.0, 0.0, 1.0) and m2.recall == 0.0
    # Page 3: shingles are a multiset: truth {wxyz ×2, xyzw, yzwx, zwxy}, pred {wxyz}:
    # tp 1, fp 0, fn 4 → P = 1, R = 1/5.
    m3 = match("w x y z w x y z", "w x y z")
    assert m3.precision == 1.0 and math.isclose(m3.recall, 0.2)
    case = match("It's fine.", "it s   fine")
    assert (case.precision, case.recall) == (0.0, 0.0)  # tokens are case-sensitive
    # Page 4: identical after tokenizing → P = R = 1, exact.
    m4 = match("It's fine.", "It s\nfine")
    assert (m4.precision, m4.recall) == (1.0, 1.0)
    scores = score([m1, m2, m3, m4], [False, False, False, True])
    # P = mean(1/2, 1, 1) over pages 1, 3, 4; R = mean(1/2, 0, 1/5, 1) over all four.
    p, r = 2.5 / 3, 1.7 / 4
    assert math.isclose(scores.precision, p) and math.isclose(scores.recall, r)
    assert math.isclose(scores.f1, 2 * p * r / (p + r))  # 0.5629…
    assert scores.exact == 0.25


# --- Extractors and timing -------------------------------------------------------------------

Extract = Callable[[str, str], str]  # (html, url) → text; raises when it cannot


def feed_ingest(*, feed: bool, rules_off: bool = False) -> Extract:
    """Our cleaner through its public stage function, on pages or on feed entries
    (``rules_off``: with an empty rule set, to measure what the packs add)."""
    from zoneinfo import ZoneInfo

    from config.settings import load_settings
    from pipelines.documents import FeedFields, RawDocument
    from pipelines.process import process_document
    from pipelines.rules import RuleSet, rules_from_dir

    rules = RuleSet(()) if rules_off else rules_from_dir(load_settings({}).boilerplate_dir)
    zone = ZoneInfo("UTC")
    fields = FeedFields(title="A title")

    def page(html: str, url: str) -> str:
        doc = RawDocument(kind="html", content=html, source_kind="page", url=url)
        return process_document(doc, rules, default_tz=zone).article.text

    def entry(html: str, url: str) -> str:
        doc = RawDocument(kind="html", content=html, source_kind="feed", url=url, feed=fields)
        return process_document(doc, rules, default_tz=zone).article.text

    return entry if feed else page


def trafilatura_extract(*, fast: bool, favor_recall: bool = False) -> Extract:
    import trafilatura

    def extract(html: str, url: str) -> str:
        return (
            trafilatura.extract(html, include_comments=False, fast=fast, favor_recall=favor_recall)
            or ""
        )

    return extract


def lxml_floor() -> Extract:
    from lxml.html import fragment_fromstring

    def extract(html: str, url: str) -> str:
        return fragment_fromstring(html, create_parent="div").text_content()

    return extract


@dataclass(frozen=True, slots=True)
class Outcome:
    text: str
    cpu: float  # seconds, in the fastest pass
    error: str | None  # "Type: message" when the extractor raised


@dataclass(frozen=True, slots=True)
class Run:
    name: str
    outcomes: list[Outcome]
    cpu: float  # total seconds of the fastest pass
    matches: list[Match]
    scores: Scores

    @property
    def rate(self) -> float:
        return len(self.outcomes) / self.cpu if self.cpu else math.inf

    @property
    def no_text(self) -> int:
        return sum(not o.text.strip() for o in self.outcomes)

    @property
    def raised(self) -> int:
        return sum(o.error is not None for o in self.outcomes)


def timed_pass(extract: Extract, inputs: Sequence[tuple[str, str]]) -> list[Outcome]:
    outcomes = []
    clock = time.process_time
    for html, url in inputs:
        start = clock()
        try:
            text, error = extract(html, url), None
        except Exception as exc:  # a refusal (DocumentError) or a bug: counted, shown
            text, error = "", f"{type(exc).__name__}: {exc}"
        outcomes.append(Outcome(text, clock() - start, error))
    return outcomes


def run(
    name: str,
    extract: Extract,
    inputs: Sequence[tuple[str, str]],
    truths: Sequence[str],
    repeat: int,
) -> Run:
    """Time ``extract`` on every input, ``repeat`` times, and score the fastest pass.
    One untimed call first, so lazy imports and caches filled once are not charged."""
    with contextlib.suppress(Exception):
        extract(*inputs[0])
    passes = [timed_pass(extract, inputs) for _ in range(repeat)]
    best = min(passes, key=lambda outcomes: sum(o.cpu for o in outcomes))
    matches = [match(truth, o.text) for truth, o in zip(truths, best, strict=True)]
    exact = [tokens(truth) == tokens(o.text) for truth, o in zip(truths, best, strict=True)]
    return Run(name, best, sum(o.cpu for o in best), matches, score(matches, exact))


# --- The benchmark pages ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    id: str
    url: str
    html: str
    truth: str


def load_truth(corpus: Path) -> dict[str, dict[str, str]]:
    """``{id: {"articleBody": text, "url": url}}``; exits saying where it looked if missing."""
    truth_file = corpus / "ground-truth.json"
    if not truth_file.is_file() or not (corpus / "html").is_dir():
        raise SystemExit(
            f"benchmark corpus not found at {corpus} (expected ground-truth.json and html/); "
            "pass --corpus PATH to the article-extraction-benchmark folder"
        )
    return json.loads(truth_file.read_text(encoding="utf-8"))


def load_pages(corpus: Path, truth: dict[str, dict[str, str]], limit: int | None) -> list[Page]:
    """The first ``limit`` pages by id, decompressed (all of them without a limit)."""
    html_dir = corpus / "html"
    pages = []
    for item_id in sorted(truth)[:limit]:
        path = html_dir / f"{item_id}.html.gz"
        if not path.is_file():
            raise SystemExit(f"{path} is missing: the corpus at {corpus} is incomplete")
        with gzip.open(path, "rt", encoding="utf-8") as f:
            html = f.read()
        item = truth[item_id]
        pages.append(Page(item_id, item.get("url", ""), html, item.get("articleBody", "")))
    return pages


# --- Feed-sized fragments --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fragment:
    html: str
    text: str  # the article text it carries: the truth for the metric


def paragraphs_of(body: str) -> list[str]:
    return [p for p in (line.strip() for line in body.split("\n")) if p]


def inline_markup(paragraph: str, rng: random.Random) -> str:
    """The paragraph, escaped, with a word run in ``<em>`` or ``<a href>`` now and then;
    the tokens are unchanged."""
    words = [html_lib.escape(word, quote=False) for word in paragraph.split(" ")]
    if len(words) > 12:
        half = len(words) // 2
        # <em> in the first half, <a> in the second: never misnested.
        for tag, low in (("em", 0), ("a", half)):
            if rng.random() < 0.4:
                start = rng.randrange(low, low + half - 3)
                end = start + rng.randint(1, 3)
                slug = re.sub(r"\W+", "-", " ".join(words[start:end]).lower()).strip("-")
                attrs = f' href="https://example.org/tag/{slug}/"' if tag == "a" else ""
                words[start] = f"<{tag}{attrs}>{words[start]}"
                words[end - 1] = f"{words[end - 1]}</{tag}>"
    return " ".join(words)


def render_body(blocks: Sequence[tuple[str, str]]) -> str:
    """``(tag, inner html)`` blocks as HTML; consecutive ``li`` blocks share one ``<ul>``."""
    out = []
    for tag, group in itertools.groupby(blocks, key=lambda block: block[0]):
        items = [f"<{tag}>{inner}</{tag}>" for _, inner in group]
        out.append(f"<ul>{''.join(items)}</ul>" if tag == "li" else "\n".join(items))
    return "\n".join(out)


def feed_trailer(rng: random.Random, index: int) -> str:
    """Boilerplate WordPress (Jetpack, Yoast) and FeedBurner put in a feed entry's content."""
    post, site = f"https://example.org/{index}/a-post/", "https://example.org/"
    parts = []
    if rng.random() < 0.6:
        buttons = "".join(
            f'<li class="share-{name.lower()}"><a rel="nofollow noopener noreferrer" '
            f'data-shared="sharing-{name.lower()}-{index}" class="share-{name.lower()} sd-button '
            f'share-icon" href="{post}?share={name.lower()}&amp;nb=1" target="_blank" '
            f'title="Click to share on {name}"><span>{name}</span></a></li>'
            for name in ("Twitter", "Facebook", "LinkedIn", "Email", "Print")
        )
        parts.append(
            '<div class="sharedaddy sd-sharing-enabled"><div class="robots-nocontent sd-block '
            'sd-social sd-social-icon-text sd-sharing"><h3 class="sd-title">Share this:</h3>'
            f'<div class="sd-content"><ul>{buttons}<li class="share-end"></li></ul></div>'
            "</div></div>"
        )
    if rng.random() < 0.7:
        parts.append(
            f'<p>The post <a rel="nofollow" href="{post}">A title</a> appeared first on '
            f'<a rel="nofollow" href="{site}">Example News</a>.</p>'
        )
    if rng.random() < 0.6 or not parts:
        flares = "".join(
            f'<a href="https://feeds.feedburner.com/~ff/x?a={index}abc:{name}"><img '
            f'src="https://feeds.feedburner.com/~ff/x?d={name}" border="0"></img></a> '
            for name in ("yIl2AUoC8zA", "qj6IDK7rITs", "63t7Ie-LG7Y")
        )
        parts.append(f'<div class="feedflare">\n{flares}\n</div>')
        parts.append(
            '<img width="1" height="1" alt="" '
            f'src="https://feeds.feedburner.com/~r/x/~4/abc{index}">'
        )
    return "\n".join(parts)


def paragraph_stream(bodies: Sequence[list[str]], start: int) -> Iterator[str]:
    """Paragraphs of the bodies from ``start`` on, wrapping around: a fragment too short
    from one body goes on with the next."""
    for k in itertools.count(start):
        yield from bodies[k % len(bodies)]


def block_for(paragraph: str, rng: random.Random) -> tuple[str, str]:
    if len(paragraph) < 90 and paragraph[-1] not in ".!?:;”\"'" and rng.random() < 0.8:
        return "h2", html_lib.escape(paragraph, quote=False)
    if len(paragraph) < 250 and rng.random() < 0.15:
        return "li", inline_markup(paragraph, rng)
    return "p", inline_markup(paragraph, rng)


def feed_fragments(truths: Sequence[str], count: int, seed: int = FRAGMENT_SEED) -> list[Fragment]:
    """``count`` deterministic fragments of FRAGMENT_MIN..FRAGMENT_MAX bytes (UTF-8), each
    starting with a ground-truth body (the next one when too short), cut at a paragraph."""
    rng = random.Random(seed)
    bodies = [paras for paras in (paragraphs_of(t) for t in truths) if paras]
    order = bodies[:]
    rng.shuffle(order)
    fragments = []
    for index in range(count):
        target = rng.randint(FRAGMENT_MIN, FRAGMENT_MAX)
        trailer = feed_trailer(rng, index)
        blocks: list[tuple[str, str]] = []
        used: list[str] = []
        html = trailer
        for paragraph in paragraph_stream(order, index):
            candidate = [*blocks, block_for(paragraph, rng)]
            rendered = f"{render_body(candidate)}\n{trailer}"
            if len(rendered.encode()) > FRAGMENT_MAX:
                if len(html.encode()) >= FRAGMENT_MIN:
                    break
                continue  # too long to fit while still short: skip it
            blocks, html = candidate, rendered
            used.append(paragraph)
            if len(html.encode()) >= target:
                break
        fragments.append(Fragment(html, "\n\n".join(used)))
    return fragments


# --- Output ----------------------------------------------------------------------------------


def canonical(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def print_table(runs: Sequence[Run], unit: str, baseline: str) -> None:
    base = next((r for r in runs if r.name == baseline), None)
    head = (
        f"{'extractor':<20} {'precision':>9} {'recall':>7} {'F1':>7} {'exact':>6} "
        f"{unit + '/s CPU':>12} {'× ' + baseline:>20} {'no text':>8} {'raised':>7}"
    )
    print(head)
    print("-" * len(head))
    for r in runs:
        s = r.scores
        ratio = f"{r.rate / base.rate:.2f}" if base else "–"
        print(
            f"{r.name:<20} {s.precision:>9.3f} {s.recall:>7.3f} {s.f1:>7.3f} {s.exact:>6.3f} "
            f"{r.rate:>12.1f} {ratio:>20} {r.no_text:>8} {r.raised:>7}"
        )
    for r in runs:
        errors = Counter(_short(o.error, 110) for o in r.outcomes if o.error)
        for error, times in errors.most_common(3):
            print(f"  {r.name} raised ×{times}: {error}")


def _short(text: str | None, limit: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def print_worst(run_: Run, pages: Sequence[Page], k: int) -> None:
    ranked = sorted(zip(pages, run_.outcomes, run_.matches, strict=True), key=lambda x: x[2].f1)
    print(f"\n{k} pages with the lowest F1 for {run_.name}:")
    for page, outcome, m in ranked[:k]:
        print(f"\n{page.id}  {page.url}")
        print(f"  P {m.precision:.3f}  R {m.recall:.3f}  F1 {m.f1:.3f}", end="")
        print(f"  ({len(outcome.text)} chars extracted, {len(page.truth)} in the truth)")
        if outcome.error:
            print(f"  raised: {_short(outcome.error, 200)}")
        print(f"  ours : {_short(outcome.text, 200)}")
        print(f"  truth: {_short(page.truth, 200)}")


def run_json(run_: Run, ids: Sequence[str]) -> dict[str, Any]:
    s = run_.scores
    return {
        "precision": s.precision,
        "recall": s.recall,
        "f1": s.f1,
        "exact": s.exact,
        "per_cpu_second": run_.rate,
        "no_text": run_.no_text,
        "raised": run_.raised,
        "items": {
            item_id: {
                "tp": m.tp,
                "fp": m.fp,
                "fn": m.fn,
                "precision": m.precision,
                "recall": m.recall,
                "f1": m.f1,
                "cpu_seconds": o.cpu,
                "chars": len(o.text),
                "error": o.error,
            }
            for item_id, o, m in zip(ids, run_.outcomes, run_.matches, strict=True)
        },
    }


# --- Main ------------------------------------------------------------------------------------


def page_extractor(name: str) -> Extract:
    if name == OURS:
        return feed_ingest(feed=False)
    if name == OURS_NO_RULES:
        return feed_ingest(feed=False, rules_off=True)
    if name == TRAFILATURA_AS_OURS:
        return trafilatura_extract(fast=True, favor_recall=True)
    return trafilatura_extract(fast=name == TRAFILATURA_FAST)


def fragment_extractor(name: str) -> Extract:
    if name == OURS:
        return feed_ingest(feed=True)
    if name == LXML_FLOOR:
        return lxml_floor()
    return trafilatura_extract(fast=True)


def versions() -> str:
    from importlib.metadata import version

    import lxml.etree

    lxml_version = ".".join(map(str, lxml.etree.LXML_VERSION[:3]))
    return (
        f"Python {platform.python_version()}, trafilatura {version('trafilatura')}, "
        f"lxml {lxml_version}, {platform.machine()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="benchmark folder")
    parser.add_argument("--limit", type=int, help="first N pages by sorted id")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only this extractor (repeatable): {', '.join(PAGE_EXTRACTORS)} "
        "(case, spaces and punctuation ignored: trafilatura-fast works); the lxml floor "
        "always runs on fragments",
    )
    parser.add_argument("--worst", type=int, default=0, metavar="K", help="show K worst pages")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write per-page metrics")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; fastest is kept")
    parser.add_argument("--fragments", type=int, default=300, help="feed fragments (0: skip)")
    parser.add_argument("--self-test", action="store_true", help="check the metric and exit")
    args = parser.parse_args()

    self_test()  # always: microseconds, and a wrong metric would make every number wrong
    if args.self_test:
        print("metric self-test passed")
        return
    if args.repeat < 1 or (args.limit is not None and args.limit < 1):
        parser.error("--repeat and --limit must be at least 1")
    known = {canonical(name): name for name in (*PAGE_EXTRACTORS, LXML_FLOOR)}
    selected = set(known.values())
    if args.only:
        unknown = [name for name in args.only if canonical(name) not in known]
        if unknown:
            parser.error(f"unknown extractor {unknown[0]!r}; known: {', '.join(known.values())}")
        selected = {known[canonical(name)] for name in args.only}

    truth = load_truth(args.corpus)
    pages = load_pages(args.corpus, truth, args.limit)
    size = sum(len(page.html.encode()) for page in pages)
    print(f"corpus: {args.corpus} — {len(pages)} pages, {size / 1e6:.1f} MB of HTML")
    print(f"{versions()}; CPU time of the fastest of {args.repeat} pass(es)\n")

    inputs = [(page.html, page.url) for page in pages]
    truths = [page.truth for page in pages]
    page_runs = [
        run(name, page_extractor(name), inputs, truths, args.repeat)
        for name in PAGE_EXTRACTORS
        if name in selected
    ]
    if page_runs:
        print(f"benchmark pages ({len(pages)}), metric of the benchmark (4-token shingles)")
        print_table(page_runs, "pages", TRAFILATURA_FAST)

    fragment_runs: list[Run] = []
    fragments: list[Fragment] = []
    if args.fragments > 0:
        # From every ground-truth body, whatever --limit: comparable across runs.
        bodies = [truth[item_id].get("articleBody", "") for item_id in sorted(truth)]
        fragments = feed_fragments(bodies, args.fragments)
        sizes = sorted(len(f.html.encode()) for f in fragments)
        feed_inputs = [(f.html, FRAGMENT_URL) for f in fragments]
        feed_truths = [f.text for f in fragments]
        fragment_runs = [
            run(name, fragment_extractor(name), feed_inputs, feed_truths, args.repeat)
            for name in FRAGMENT_EXTRACTORS
            if name in selected or name == LXML_FLOOR
        ]
        print(
            f"\nfeed fragments ({len(fragments)}, {sizes[0] / 1024:.1f}–{sizes[-1] / 1024:.1f} KB, "
            f"median {statistics.median(sizes) / 1024:.1f} KB), as feed entries"
        )
        print_table(fragment_runs, "docs", LXML_FLOOR)

    ours = next((r for r in page_runs if r.name == OURS), None)
    if args.worst:
        if ours is None:
            print(f"\n--worst needs {OURS} among the extractors")
        else:
            print_worst(ours, pages, args.worst)

    if args.json:
        ids = [page.id for page in pages]
        frag_ids = [f"fragment-{i:03}" for i in range(len(fragments))]
        report = {
            "corpus": str(args.corpus),
            "versions": versions(),
            "repeat": args.repeat,
            "pages": {r.name: run_json(r, ids) for r in page_runs},
            "fragments": {r.name: run_json(r, frag_ids) for r in fragment_runs},
        }
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
        print(f"\nper-page metrics written to {args.json}")


if __name__ == "__main__":
    main()

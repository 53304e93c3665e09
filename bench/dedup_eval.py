"""Repost detection on the public article-extraction benchmark: recall and precision of dedup.

Reads the Zyte/Scrapinghub article-extraction-benchmark's ``ground-truth.json`` (181 articles,
``{id: {"articleBody", "url"}}``, MIT) in place — by default
``../shared/corpus/article-extraction-benchmark`` next to the repository — and turns every
article into an HTML feed entry (its paragraphs in ``<p>``, a title made from its first
sentence). From each it builds deterministic reposts, one document per variant:

* ``aggregator``: the body plus an aggregator's "Go to Source / Author:" footer, a wpDiscuz
  rating box and a "The post … appeared first on …" line, on the aggregator's URL;
* ``title-case``: the title in Title Case and the body's punctuation changed (straight ↔ curly
  quotes, "—" ↔ " - ", some commas dropped), the same words, on another site's URL;
* ``teaser``: the first two paragraphs only (articles with fewer than 4 paragraphs are
  skipped and counted), on another site's URL;
* ``extra-paragraph``: the body plus an invented editor's note of 40–60 words, on another
  site's URL; ``intro-paragraph``: the same note opening the body (a different lead: only the
  signature's bands can find these);
* ``tracking-url``: the same body at the original URL plus ``utm_source``/``utm_medium``/
  ``fbclid``; ``tracking-cmpid``: the same with ``cmpid``/``smid`` (these should match by URL).

Everything goes through the real stage entry point, :func:`pipelines.ingest.ingest_documents`,
one document per call, against a scratch Redis this script starts (and stops). Logical database
0 holds the negatives: the 181 originals against each other, where any "duplicate" is a false
merge. Each variant gets its own database holding the originals and then that variant's reposts,
so a missed repost of one variant cannot hide or cause a match in another. A repost is a true
positive when it comes out "duplicate" of its original (of the article its original resolved
to), a wrong merge when it is a duplicate of anything else, a miss when it is published (or
fails).

Run from the repository root::

    .venv/bin/python bench/dedup_eval.py                       # everything (seconds)
    .venv/bin/python bench/dedup_eval.py --limit 40 --variant teaser --show-misses 5
    .venv/bin/python bench/dedup_eval.py --json /tmp/dedup.json

It prints a table per variant (n, true positives, misses, wrong merges, failures, recall,
precision = TP / (TP + wrong merges), the lowest and median estimated Jaccard of the near
matches, the dedup layers that matched), the overall recall and precision (false merges among
the originals count against precision), the false merges among the distinct articles, the
closest pair of distinct articles (how far below the thresholds the negatives stay), and the
run time. ``--min-jaccard``, ``--min-containment``, ``--min-words`` and ``--exact-only``
try other settings.

Where we are heading: recall ≥ 0.95 on these block edits at precision ≥ 0.99, and zero false
merges among the distinct articles.
"""

from __future__ import annotations

import argparse
import dataclasses
import html as html_lib
import json
import logging
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import redis
import structlog

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from config.settings import Settings, load_settings  # noqa: E402
from pipelines.dedup import NearOptions  # noqa: E402
from pipelines.documents import FeedFields, RawDocument  # noqa: E402
from pipelines.ingest import IngestOptions, Outcome, ingest_documents  # noqa: E402
from pipelines.neardup import Fingerprint, similarity  # noqa: E402
from pipelines.rules import rules_from_dir  # noqa: E402
from worker.embedded_redis import EmbeddedRedis  # noqa: E402
from worker.options import near_options  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "article-extraction-benchmark"
SEED = 20240611
TITLE_WORDS = 12
TEASER_PARAGRAPHS = 2
TEASER_MIN_PARAGRAPHS = 4  # a teaser of a 2- or 3-paragraph article is most of the article
# Originals are "published" a day ago, a minute apart; reposts two hours after their original.
BASE_TIME = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
REPOST_DELAY = timedelta(hours=2)

AUTHORS = ("Tyler Durden", "Jane Holloway", "Marcus Reed", "Priya Natarajan", "Staff Writer")
NOTE_OPENINGS = (
    "Editor's note: this story was first published by our partners and is republished here "
    "with permission.",
    "Editor's note: this article has been updated since it first appeared to add context and "
    "to correct a spelling.",
    "Editor's note: this report is part of our weekly roundup of the stories our readers shared "
    "most.",
)
NOTE_SENTENCES = (
    "Opinions expressed by the original author are their own and do not necessarily reflect "
    "those of this site.",
    "Readers who want to follow the story can subscribe to our newsletter for daily updates.",
    "We have not independently verified every claim made in the piece.",
    "Corrections and tips can be sent to our newsroom through the contact page.",
    "Some links in this article may earn us a small commission at no cost to you.",
    "Our coverage of this topic continues throughout the week with analysis from our desk.",
    "The headline and the summary above were written by our editors, not by the original author.",
)


# --- Corpus and documents -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """One ground-truth article as an original feed entry."""

    item_id: str
    url: str
    paragraphs: tuple[str, ...]
    title: str
    published_at: datetime

    @property
    def site(self) -> str:
        host = urlsplit(self.url).hostname or "example.org"
        return host.removeprefix("www.")

    @property
    def slug(self) -> str:
        words = re.findall(r"[a-z0-9]+", self.title.lower())[:8]
        return "-".join([*words, self.item_id[:8]])


@dataclass(frozen=True, slots=True)
class Repost:
    variant: str
    source: Source
    document: RawDocument


def load_sources(corpus: Path, limit: int | None) -> list[Source]:
    """The ground truth's articles, sorted by id (the first ``limit`` of them)."""
    truth: dict[str, dict[str, Any]] = json.loads(
        (corpus / "ground-truth.json").read_text(encoding="utf-8")
    )
    ids = sorted(truth)[:limit] if limit else sorted(truth)
    sources = []
    for i, item_id in enumerate(ids):
        body = truth[item_id].get("articleBody") or ""
        paragraphs = tuple(p.strip() for p in re.split(r"\n+", body) if p.strip())
        sources.append(
            Source(
                item_id=item_id,
                url=truth[item_id]["url"],
                paragraphs=paragraphs,
                title=derive_title(paragraphs),
                published_at=BASE_TIME + timedelta(minutes=i),
            )
        )
    return sources


def derive_title(paragraphs: Sequence[str]) -> str:
    """The first sentence, cut to :data:`TITLE_WORDS` words (the benchmark has no titles)."""
    first = paragraphs[0] if paragraphs else "Untitled"
    sentence = re.split(r"(?<=[.!?])\s+", first, maxsplit=1)[0]
    words = sentence.split()[:TITLE_WORDS]
    return " ".join(words).rstrip(".,;:!?—–-") or "Untitled"


def paragraphs_html(paragraphs: Sequence[str]) -> str:
    return "\n".join(f"<p>{html_lib.escape(p, quote=False)}</p>" for p in paragraphs)


def feed_entry(
    content: str,
    *,
    url: str,
    site: str,
    title: str,
    published_at: datetime,
    author: str | None = None,
) -> RawDocument:
    return RawDocument(
        kind="html",
        content=content,
        source_kind="feed",
        url=url,
        feed_url=f"https://feeds.example/{site}.xml",
        feed=FeedFields(title=title, author=author, published_at=published_at, site=site),
    )


def original_document(source: Source) -> RawDocument:
    return feed_entry(
        paragraphs_html(source.paragraphs),
        url=source.url,
        site=source.site,
        title=source.title,
        published_at=source.published_at,
    )


# --- Variants ---------------------------------------------------------------------------------
#
# Each takes the source and a random generator seeded by (variant, article id), and returns
# the repost document, or None when the variant does not apply to this article.

Builder = Callable[[Source, random.Random], RawDocument | None]


def aggregator(source: Source, rng: random.Random) -> RawDocument:
    author = rng.choice(AUTHORS)
    rating = f"{rng.choice(('4.5', '4', '3.8', '5'))} {rng.randint(2, 40)} votes Article Rating"
    footer = (
        f'<p><a href="{html_lib.escape(source.url)}">Go to Source</a><br>'
        f"Author: {html_lib.escape(author)}</p>\n"
        f'<div class="wpd-rating-wrap">{rating}</div>\n'
        f"<p>The post {html_lib.escape(source.title)} appeared first on "
        f"{html_lib.escape(source.site)}.</p>"
    )
    return feed_entry(
        paragraphs_html(source.paragraphs) + "\n" + footer,
        url=f"https://aggregator.example/{source.slug}",
        site="aggregator.example",
        title=source.title,
        published_at=source.published_at + REPOST_DELAY,
        author=author,
    )


_QUOTES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "'": "’", '"': "”"})
_DASH = re.compile(r"\s*—\s*|\s+-\s+")
_COMMA = re.compile(r",(?=\s)")  # not "1,000": that comma is part of a number


def title_case(text: str) -> str:
    """Every word capitalized; unlike str.title, "don't" stays "Don't", not "Don'T"."""
    return " ".join(word[:1].upper() + word[1:] for word in text.split(" "))


def repunctuate(paragraph: str, rng: random.Random) -> str:
    """The same words with other punctuation: quotes flipped, dashes swapped, about a third of
    the commas dropped."""
    text = paragraph.translate(_QUOTES)
    text = _DASH.sub(lambda m: " - " if "—" in m.group() else "—", text)
    return _COMMA.sub(lambda m: "" if rng.random() < 0.35 else ",", text)


def title_case_variant(source: Source, rng: random.Random) -> RawDocument:
    return feed_entry(
        paragraphs_html([repunctuate(p, rng) for p in source.paragraphs]),
        url=f"https://reposts.example/{source.published_at:%Y/%m}/{source.slug}",
        site="reposts.example",
        title=title_case(source.title),
        published_at=source.published_at + REPOST_DELAY,
    )


def teaser(source: Source, rng: random.Random) -> RawDocument | None:
    if len(source.paragraphs) < TEASER_MIN_PARAGRAPHS:
        return None
    return feed_entry(
        paragraphs_html(source.paragraphs[:TEASER_PARAGRAPHS]),
        url=f"https://teasers.example/story/{source.slug}",
        site="teasers.example",
        title=source.title,
        published_at=source.published_at + REPOST_DELAY,
    )


def editors_note(rng: random.Random) -> str:
    """An invented closing paragraph of 40–60 words."""
    sentences = [rng.choice(NOTE_OPENINGS)]
    pool = list(NOTE_SENTENCES)
    rng.shuffle(pool)
    for sentence in pool:
        words = len(" ".join(sentences).split())
        if words >= 40:
            break
        if words + len(sentence.split()) <= 60:
            sentences.append(sentence)
    return " ".join(sentences)


def extra_paragraph(source: Source, rng: random.Random) -> RawDocument:
    return feed_entry(
        paragraphs_html([*source.paragraphs, editors_note(rng)]),
        url=f"https://syndicated.example/news/{source.slug}",
        site="syndicated.example",
        title=source.title,
        published_at=source.published_at + REPOST_DELAY,
    )


def intro_paragraph(source: Source, rng: random.Random) -> RawDocument:
    """The same invented note, but opening the article: the lead differs, so only the
    signature's bands can find the original."""
    return feed_entry(
        paragraphs_html([editors_note(rng), *source.paragraphs]),
        url=f"https://republished.example/{source.slug}",
        site="republished.example",
        title=source.title,
        published_at=source.published_at + REPOST_DELAY,
    )


def with_query(url: str, query: str) -> str:
    base, _, fragment = url.partition("#")
    joined = f"{base}{'&' if '?' in base else '?'}{query}"
    return f"{joined}#{fragment}" if fragment else joined


def tracking_url(source: Source, rng: random.Random) -> RawDocument:
    token = "".join(
        rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789_-") for _ in range(40)
    )
    return _at_tracked_url(source, f"utm_source=rss&utm_medium=feed&fbclid={token}")


def tracking_cmpid(source: Source, rng: random.Random) -> RawDocument:
    campaign = rng.choice(("rss", "fb", "tw", "nl"))
    return _at_tracked_url(source, f"cmpid={campaign}-{rng.randint(1000, 9999)}&smid=tw-share")


def _at_tracked_url(source: Source, query: str) -> RawDocument:
    return feed_entry(
        paragraphs_html(source.paragraphs),
        url=with_query(source.url, query),
        site=source.site,
        title=source.title,
        published_at=source.published_at + REPOST_DELAY,
    )


VARIANTS: dict[str, Builder] = {
    "aggregator": aggregator,
    "title-case": title_case_variant,
    "teaser": teaser,
    "extra-paragraph": extra_paragraph,
    "intro-paragraph": intro_paragraph,
    "tracking-url": tracking_url,
    "tracking-cmpid": tracking_cmpid,
}


def build_reposts(variant: str, sources: Sequence[Source]) -> tuple[list[Repost], int]:
    """The variant's reposts and how many articles it skipped (deterministic: one generator
    per variant and article)."""
    reposts, skipped = [], 0
    for source in sources:
        document = VARIANTS[variant](source, random.Random(f"{SEED}:{variant}:{source.item_id}"))
        if document is None:
            skipped += 1
        else:
            reposts.append(Repost(variant, source, document))
    return reposts, skipped


# --- Running the real dedup --------------------------------------------------------------------


def ingest_options(settings: Settings, **near: Any) -> tuple[IngestOptions, NearOptions]:
    """The worker's options (its near-duplicate layer built from the settings as the worker
    builds it, with ``near`` overrides from the command line) on scratch streams."""
    near_layer = dataclasses.replace(near_options(settings), **near)
    options = IngestOptions(
        rules=rules_from_dir(settings.boilerplate_dir),
        default_tz=ZoneInfo("UTC"),
        dedup_ttl=3600,
        articles_stream="ingest:articles",
        duplicates_stream="ingest:duplicates",
        dead_stream="ingest:dead",
        max_share=settings.rule_max_share,
        near=near_layer,
    )
    return options, near_layer


class Ingester:
    """One document per call of :func:`ingest_documents`, each with its own delivery id."""

    def __init__(self, options: IngestOptions) -> None:
        self.options = options
        self.calls = 0

    def __call__(self, client: redis.Redis, document: RawDocument) -> Outcome:
        self.calls += 1
        [outcome] = ingest_documents(
            client, [document.to_message()], self.options, delivery_id=f"eval-{self.calls}"
        )
        return outcome


@dataclass(frozen=True, slots=True)
class Merge:
    """A document that came out a duplicate of the wrong article."""

    item_id: str
    url: str
    matched: str | None
    layer: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class Miss:
    item_id: str
    url: str
    status: str
    reason: str | None


@dataclass(slots=True)
class VariantResult:
    variant: str
    n: int = 0
    skipped: int = 0
    true_positives: int = 0
    failed: int = 0
    layers: Counter[str] = field(default_factory=Counter)
    similarities: list[float] = field(default_factory=list)  # estimated Jaccard of near matches
    misses: list[Miss] = field(default_factory=list)
    wrong: list[Merge] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.n if self.n else None

    @property
    def precision(self) -> float | None:
        matched = self.true_positives + len(self.wrong)
        return self.true_positives / matched if matched else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "n": self.n,
            "skipped": self.skipped,
            "true_positives": self.true_positives,
            "misses": len(self.misses),
            "wrong_merges": len(self.wrong),
            "failed": self.failed,
            "recall": self.recall,
            "precision": self.precision,
            "layers": dict(self.layers),
            "near_similarities": self.similarities,
            "missed": [dataclasses.asdict(m) for m in self.misses],
            "wrong": [dataclasses.asdict(m) for m in self.wrong],
        }


def ingest_originals(
    client: redis.Redis, ingest: Ingester, sources: Sequence[Source]
) -> tuple[dict[str, str], list[Merge], list[Miss]]:
    """Publish the originals. Returns the article each resolved to (by item id), the false
    merges among them and the ones that failed."""
    owners: dict[str, str] = {}
    merges, failures = [], []
    for source in sources:
        outcome = ingest(client, original_document(source))
        if outcome.status == "failed" or outcome.article_id is None:
            failures.append(Miss(source.item_id, source.url, outcome.status, outcome.reason))
            continue
        owners[source.item_id] = outcome.duplicate_of or outcome.article_id
        if outcome.status == "duplicate":
            merges.append(
                Merge(
                    source.item_id,
                    source.url,
                    outcome.duplicate_of,
                    outcome.layer,
                    outcome.reason,
                )
            )
    return owners, merges, failures


def evaluate_variant(
    client: redis.Redis, ingest: Ingester, variant: str, sources: Sequence[Source]
) -> VariantResult:
    """Originals first, then each repost; scores the reposts against their originals."""
    owners, _, _ = ingest_originals(client, ingest, sources)
    reposts, skipped = build_reposts(variant, sources)
    result = VariantResult(variant, skipped=skipped)
    for repost in reposts:
        expected = owners.get(repost.source.item_id)
        if expected is None:  # the original itself failed: nothing to match
            result.skipped += 1
            continue
        result.n += 1
        outcome = ingest(client, repost.document)
        item_id, url = repost.source.item_id, repost.document.url or ""
        if outcome.status == "duplicate" and outcome.duplicate_of == expected:
            result.true_positives += 1
            result.layers[outcome.layer or "?"] += 1
            if outcome.layer == "near" and outcome.similarity is not None:
                result.similarities.append(outcome.similarity)
        elif outcome.status == "duplicate":
            result.layers[f"{outcome.layer or '?'} (wrong)"] += 1
            result.wrong.append(
                Merge(item_id, url, outcome.duplicate_of, outcome.layer, outcome.reason)
            )
        else:
            result.failed += outcome.status == "failed"
            result.misses.append(Miss(item_id, url, outcome.status, outcome.reason))
    return result


# --- Report ----------------------------------------------------------------------------------


def ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def print_table(results: Sequence[VariantResult]) -> None:
    header = (
        f"{'variant':<16} {'n':>4} {'TP':>4} {'miss':>4} {'wrong':>5} {'fail':>4} "
        f"{'recall':>6} {'prec.':>6} {'near J min/med':>14}  layers matched"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        layers = " ".join(f"{name}:{count}" for name, count in sorted(r.layers.items())) or "—"
        near = (
            f"{min(r.similarities):.2f}/{statistics.median(r.similarities):.2f}"
            if r.similarities
            else "—"
        )
        print(
            f"{r.variant:<16} {r.n:>4} {r.true_positives:>4} {len(r.misses):>4} "
            f"{len(r.wrong):>5} {r.failed:>4} {ratio(r.recall):>6} {ratio(r.precision):>6} "
            f"{near:>14}  {layers}"
        )


def closest_distinct(client: redis.Redis) -> tuple[float, float, int]:
    """The highest estimated Jaccard and containment between any two distinct published
    articles (how far below the thresholds the negatives stay), and the pairs compared."""
    prints = []
    for _, fields in client.xrange("ingest:articles"):
        packed = json.loads(fields[b"article"]).get("fingerprint")
        if packed:
            prints.append(Fingerprint.unpack(bytes.fromhex(packed)))
    best_j = best_c = 0.0
    pairs = 0
    for i, a in enumerate(prints):
        for b in prints[i + 1 :]:
            j, c = similarity(a, b)
            best_j, best_c, pairs = max(best_j, j), max(best_c, c), pairs + 1
    return best_j, best_c, pairs


def print_merges(title: str, merges: Sequence[Merge], limit: int) -> None:
    if not merges:
        return
    print(f"\n{title}:")
    for m in merges[:limit]:
        print(f"  {m.item_id[:16]}  {m.url}\n    → {m.matched} ({m.layer}): {m.reason}")
    if len(merges) > limit:
        print(f"  … and {len(merges) - limit} more")


def quiet_logs() -> None:
    """The pipeline logs every outcome at info; only errors go to stderr here."""
    logging.basicConfig(level=logging.ERROR)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="benchmark folder")
    parser.add_argument("--limit", type=int, help="first N articles by sorted id")
    parser.add_argument(
        "--variant",
        action="append",
        choices=list(VARIANTS),
        metavar="NAME",
        help=f"evaluate only this variant (repeatable): {', '.join(VARIANTS)}",
    )
    parser.add_argument(
        "--show-misses", type=int, default=0, metavar="K", help="print K missed reposts"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every result here")
    for name in ("min_jaccard", "min_containment"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, help="override the setting")
    parser.add_argument("--min-words", type=int, help="override the setting")
    parser.add_argument("--exact-only", action="store_true", help="near-duplicate layer off")
    args = parser.parse_args()
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    variants = list(dict.fromkeys(args.variant or VARIANTS))
    # Database 0 for the negatives, one per variant after it (Redis has 16 by default).
    assert len(variants) < 16

    started = time.perf_counter()
    quiet_logs()
    settings = load_settings({})
    overrides: dict[str, Any] = {
        name: getattr(args, name)
        for name in ("min_jaccard", "min_containment", "min_words")
        if getattr(args, name) is not None
    }
    if args.exact_only:
        overrides["enabled"] = False
    options, near = ingest_options(settings, **overrides)
    sources = load_sources(args.corpus, args.limit)
    print(f"corpus: {args.corpus / 'ground-truth.json'} — {len(sources)} articles")
    print(
        f"near-duplicate layer: {'on' if near.enabled else 'off'}, min words {near.min_words}, "
        f"min Jaccard {near.min_jaccard}, min containment {near.min_containment}"
    )
    ingest = Ingester(options)

    with tempfile.TemporaryDirectory(prefix="bench-dedup-") as scratch:
        server = EmbeddedRedis(Path(scratch) / "redis", appendonly=False)
        server.start()
        clients: list[redis.Redis] = []
        try:
            # Not from_url(server.url, db=…): the URL's "/0" would win over the db argument.
            clients = [
                redis.Redis(host="127.0.0.1", port=server.port, db=db)
                for db in range(len(variants) + 1)
            ]
            _, false_merges, failed_originals = ingest_originals(clients[0], ingest, sources)
            closest_j, closest_c, pairs = closest_distinct(clients[0])
            results = [
                evaluate_variant(client, ingest, variant, sources)
                for client, variant in zip(clients[1:], variants, strict=True)
            ]
        finally:
            for client in clients:
                client.close()
            server.stop()
    elapsed = time.perf_counter() - started

    print(f"\nreposts ({ingest.calls} documents through ingest_documents, one per call)\n")
    print_table(results)
    for r in results:
        if r.skipped:
            print(f"{r.variant}: {r.skipped} article(s) skipped (too few paragraphs or failed)")
    tp = sum(r.true_positives for r in results)
    n = sum(r.n for r in results)
    wrong = sum(len(r.wrong) for r in results)
    matched = tp + wrong + len(false_merges)
    recall = tp / n if n else None
    precision = tp / matched if matched else None
    print(
        f"\noverall: recall {ratio(recall)} ({tp}/{n}), precision {ratio(precision)} "
        f"({tp}/{matched}: {wrong} wrong merge(s), {len(false_merges)} false merge(s))"
    )
    print(
        f"false merges among the {len(sources)} distinct articles: {len(false_merges)} (target: 0)"
    )
    print(
        f"closest distinct pair ({pairs} pairs): estimated Jaccard {closest_j:.2f}, "
        f"containment {closest_c:.2f} (thresholds {near.min_jaccard} / {near.min_containment})"
    )
    print_merges("false merges among distinct articles", false_merges, len(false_merges))
    if failed_originals:
        print(f"\noriginals that failed ({len(failed_originals)}):")
        for miss in failed_originals:
            print(f"  {miss.item_id[:16]}  {miss.url}: {miss.reason}")
    print_merges(
        "wrong merges of reposts", [m for r in results for m in r.wrong], max(args.show_misses, 10)
    )
    if args.show_misses:
        misses = [(r.variant, m) for r in results for m in r.misses]
        print(f"\nmissed reposts (first {min(args.show_misses, len(misses))} of {len(misses)}):")
        for variant, miss in misses[: args.show_misses]:
            print(f"  {variant:<16} original {miss.item_id[:16]}  {miss.url}")
            print(f"    {miss.status}: {miss.reason or 'no duplicate found'}")
    print(f"\nrun time: {elapsed:.1f} s")

    if args.json:
        report = {
            "corpus": str(args.corpus),
            "articles": len(sources),
            "variants": [r.to_dict() for r in results],
            "overall": {"n": n, "true_positives": tp, "recall": recall, "precision": precision},
            "false_merges": [dataclasses.asdict(m) for m in false_merges],
            "failed_originals": [dataclasses.asdict(m) for m in failed_originals],
            "seconds": elapsed,
        }
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"results written to {args.json}")


if __name__ == "__main__":
    main()

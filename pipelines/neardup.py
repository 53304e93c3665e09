"""Near-duplicate fingerprints: MinHash over word shingles, banded for LSH.

The text's match form (NFKC, case-folded, punctuation and spaces collapsed — the form
the content hash is made of) is cut into 5-word shingles; rensa's MinHash (in Rust,
many times faster than datasketch) gives 128 values. A fingerprint keeps 8 bits of each
(b-bit minwise hashing: two values agree by chance 1 time in 256, which the estimate
corrects for) — 128 bytes that estimate the Jaccard similarity of two texts to about
±0.04.

LSH: the first 125 values, banded 25 × 5. Two texts share a band with probability
1 − (1 − J⁵)²⁵: 0.55 at Jaccard 0.5, 0.87 at 0.6, 0.99 at 0.7 — measured on
``bench/dedup_eval.py`` this finds reposts with an added opening paragraph that 16 × 8
(the cut near 0.7) misses one time in twelve, while unrelated texts meet in a band about
once in 3,000 pairs at Jaccard 0.1, and each such candidate is then checked.

The fingerprint also carries the shingle count (for containment), a hash of the first
30 words (the lead: a teaser starts like its article) and 4-byte hashes of the first
paragraphs. Containment estimated from MinHash is too noisy when one text is a tenth of
the other (a handful of agreeing values out of 128); the paragraph hashes settle the
teaser case exactly: its paragraphs, bar a last one its feed may have cut short, are the
first paragraphs of its article.

Layout of :meth:`Fingerprint.packed` (the dedup script in Redis reads it too)::

    0..127   low byte of each MinHash value
    128..131 distinct shingles (big-endian)
    132..139 lead hash
    140      paragraph count (at most 255)
    141..    4-byte hashes of the first LEAD_PARAGRAPHS paragraphs
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from rensa import RMinHash

from pipelines.text import match_words

PERMUTATIONS = 128
BANDS = 25
ROWS = 5
SHINGLE_WORDS = 5
LEAD_WORDS = 30
LEAD_PARAGRAPHS = 8  # paragraph hashes kept: teasers are the first few paragraphs
# A one-paragraph text opens a longer one only if it is its first paragraph, or about 45
# words at most: the shared lead (30 words) is then most of it.
LEAD_ONLY_MAX_SHINGLES = 45 - SHINGLE_WORDS + 1
SEED = 20200203  # fixed: fingerprints must compare across processes and restarts
# Containment is estimated only for texts within this factor in size: its error grows with
# the ratio (±0.13 at 4×, ±0.35 at 20× with 128 values) — beyond it, paragraphs decide.
CONTAINMENT_MAX_RATIO = 4

_COUNT = PERMUTATIONS  # offsets in the packed form
_LEAD = _COUNT + 4
_PARAGRAPH_COUNT = _LEAD + 8
_PARAGRAPHS = _PARAGRAPH_COUNT + 1


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A text's near-duplicate fingerprint (see the module docstring)."""

    values: bytes  # PERMUTATIONS low bytes of the MinHash values
    shingles: int  # distinct shingles in the text
    lead: bytes  # 8-byte hash of the first LEAD_WORDS words
    paragraph_count: int
    paragraphs: bytes  # 4-byte hashes of the first LEAD_PARAGRAPHS paragraphs

    def packed(self) -> bytes:
        return (
            self.values
            + struct.pack(">I", self.shingles)
            + self.lead
            + bytes([min(self.paragraph_count, 255)])
            + self.paragraphs
        )

    @classmethod
    def unpack(cls, data: bytes) -> Fingerprint:
        if len(data) < _PARAGRAPHS or (len(data) - _PARAGRAPHS) % 4:
            raise ValueError(f"not a packed fingerprint ({len(data)} bytes)")
        return cls(
            values=data[:PERMUTATIONS],
            shingles=struct.unpack_from(">I", data, _COUNT)[0],
            lead=data[_LEAD:_PARAGRAPH_COUNT],
            paragraph_count=data[_PARAGRAPH_COUNT],
            paragraphs=data[_PARAGRAPHS:],
        )

    def bands(self) -> list[bytes]:
        """One 6-byte key per band: the band's index, then its ROWS values. The values
        are uniform, so the key needs no further hashing to spread over buckets."""
        return [
            bytes([band]) + self.values[band * ROWS : (band + 1) * ROWS] for band in range(BANDS)
        ]


def fingerprint(text: str) -> Fingerprint | None:
    """The fingerprint of a clean text (paragraphs separated by blank lines); None when
    it has no words."""
    paragraphs = [words for p in text.split("\n\n") if (words := match_words(p))]
    words = [word for paragraph in paragraphs for word in paragraph]
    if not words:
        return None
    if len(words) < SHINGLE_WORDS:
        shingles = {" ".join(words)}
    else:
        shingles = set(map(" ".join, zip(*(words[i:] for i in range(SHINGLE_WORDS)), strict=False)))
    minhash = RMinHash(num_perm=PERMUTATIONS, seed=SEED)
    minhash.update(list(shingles))
    return Fingerprint(
        values=bytes(v & 0xFF for v in minhash.digest()),
        shingles=len(shingles),
        lead=_hash(" ".join(words[:LEAD_WORDS]), 8),
        paragraph_count=len(paragraphs),
        paragraphs=b"".join(_hash(" ".join(p), 4) for p in paragraphs[:LEAD_PARAGRAPHS]),
    )


def _hash(text: str, size: int) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=size).digest()


def similarity(a: Fingerprint, b: Fingerprint) -> tuple[float, float]:
    """(estimated Jaccard, estimated containment of the smaller text in the larger; 0 for
    texts more than CONTAINMENT_MAX_RATIO apart in size) — the computation the dedup
    script does in Redis."""
    agree = sum(1 for x, y in zip(a.values, b.values, strict=True) if x == y)
    jaccard = max(0.0, (agree / PERMUTATIONS - 1 / 256) / (1 - 1 / 256))
    smaller, larger = max(1, min(a.shingles, b.shingles)), max(a.shingles, b.shingles)
    if larger > CONTAINMENT_MAX_RATIO * smaller:
        return jaccard, 0.0
    shared = jaccard * (a.shingles + b.shingles) / (1 + jaccard)
    return jaccard, min(1.0, shared / smaller)


def opens(a: Fingerprint, b: Fingerprint) -> bool:
    """Whether the shorter text opens the longer: its paragraphs, bar the last (a feed
    may cut it short), are the longer text's first paragraphs, in order; a text of one
    paragraph must be the first paragraph, or short enough that a shared lead is most of
    it."""
    if a.shingles > b.shingles:
        a, b = b, a
    whole = a.paragraph_count - 1
    if whole > LEAD_PARAGRAPHS:
        return False
    if whole == 0:
        return a.shingles <= LEAD_ONLY_MAX_SHINGLES or a.paragraphs[:4] == b.paragraphs[:4]
    return a.paragraphs[: 4 * whole] == b.paragraphs[: 4 * whole]

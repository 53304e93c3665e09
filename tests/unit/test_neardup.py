"""Near-duplicate fingerprints: what they estimate, what they keep, and the match form
they are made of."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.neardup import (
    BANDS,
    PERMUTATIONS,
    ROWS,
    Fingerprint,
    fingerprint,
    opens,
    similarity,
)
from pipelines.text import match_form
from tests.helpers import SEED
from tests.stories import BIKE_LANES, EDITORS_NOTE, LIBRARY_HOURS, text

SEED_TEXT = "\n\n".join(p for p in SEED.read_text(encoding="utf-8").split("\n\n")[2:] if p)


def fp(value: str) -> Fingerprint:
    result = fingerprint(value)
    assert result is not None
    return result


def test_the_same_words_give_the_same_fingerprint_whatever_the_punctuation_and_case() -> None:
    shouted = SEED_TEXT.upper().replace(",", "").replace("’", "'")
    assert fp(shouted).values == fp(SEED_TEXT).values
    assert similarity(fp(shouted), fp(SEED_TEXT)) == (1.0, 1.0)


def test_a_repost_with_an_extra_paragraph_is_near_and_unrelated_stories_are_far() -> None:
    original = fp(text(BIKE_LANES))
    jaccard, containment = similarity(original, fp(text([*BIKE_LANES, EDITORS_NOTE])))
    assert jaccard > 0.6 and containment > 0.8
    jaccard, containment = similarity(original, fp(text(LIBRARY_HOURS)))
    assert jaccard < 0.15 and containment < 0.3  # same beat, same phrasing, another story


def test_a_teaser_opens_its_article_and_not_another_one() -> None:
    teaser = fp(text(BIKE_LANES[:2]))
    assert opens(teaser, fp(text(BIKE_LANES))) and opens(fp(text(BIKE_LANES)), teaser)
    # A feed may cut the teaser's last paragraph short.
    cut = fp(text([BIKE_LANES[0], BIKE_LANES[1][:80] + "…"]))
    assert opens(cut, fp(text(BIKE_LANES)))
    assert not opens(fp(text([BIKE_LANES[0], LIBRARY_HOURS[1], "More."])), fp(text(BIKE_LANES)))


def test_containment_is_not_estimated_for_texts_of_very_different_sizes() -> None:
    """A few chance agreements out of 128 would make any short text look contained."""
    short = fp(text(BIKE_LANES[:1]))
    long = fp(text(BIKE_LANES * 6 + LIBRARY_HOURS * 6))
    assert long.shingles > 4 * short.shingles
    assert similarity(short, long)[1] == 0.0


def test_the_packed_form_round_trips_and_has_the_documented_layout() -> None:
    value = fp(text(BIKE_LANES))
    packed = value.packed()
    assert Fingerprint.unpack(packed) == value
    assert len(packed) == PERMUTATIONS + 4 + 8 + 1 + 4 * len(BIKE_LANES)
    assert packed[PERMUTATIONS + 12] == len(BIKE_LANES)
    bands = value.bands()
    assert len(bands) == BANDS and {len(b) for b in bands} == {1 + ROWS}
    assert [b[0] for b in bands] == list(range(BANDS))


def test_no_words_no_fingerprint() -> None:
    assert fingerprint("") is None and fingerprint("— … !") is None
    assert fingerprint("one two").shingles == 1  # type: ignore[union-attr]


_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def reference_match_form(value: str) -> str:
    value = unicodedata.normalize("NFKC", _INVISIBLE.sub("", value)).casefold()
    return re.sub(r"[\W_]+", " ", value).strip()


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_the_ascii_fast_path_of_the_match_form_is_the_general_one(value: str) -> None:
    assert match_form(value) == reference_match_form(value)

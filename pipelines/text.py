"""Text normalization shared by the stages.

Two forms: the *display* form (what downstream reads: NFC, plain spaces, no zero-width
characters, curly quotes kept) and the *match* form (NFKC, case-folded, punctuation and
whitespace collapsed) used for hashing and rule comparisons.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Zero-width and bidi-control characters that only hide differences between copies.
# (A regex: str.translate with a dict is several times slower on long texts.)
# (C0 control characters too: never text.)
_INVISIBLE = re.compile(
    "[\u200b\u200c\u200d\u2060\ufeff\u00ad\u200e\u200f\u202a-\u202e\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]"
)
# Every Unicode space separator (NBSP, thin space, ideographic space, …) and tab.
_SPACES = re.compile(r"[^\S\r\n]+")
_NON_WORD = re.compile(r"[\W_]+")
_ALNUM = re.compile(r"[^\W_]")


def normalize_line(line: str) -> str:
    """Display form of one line: NFC, invisible characters dropped, runs of any kind
    of space collapsed to one plain space, ends trimmed."""
    line = unicodedata.normalize("NFC", _INVISIBLE.sub("", line))
    return _SPACES.sub(" ", line).strip()


_SEPARATOR = "\ue000"  # private-use characters: not text, not space, NFC-stable
LINE_BREAK = "\ue001"  # where markup breaks a line (<br>): the only line breaks in HTML text
_ALL_SPACE = re.compile(r"\s+")


def normalize_texts(texts: list[str]) -> list[list[str]]:
    """HTML text in display form: each text's lines, where a line ends only at
    :data:`LINE_BREAK` (source newlines are just spaces in HTML). One pass of each
    regular expression over all the texts at once (a page has hundreds of paragraphs;
    one pass each was most of the cost)."""
    if not texts:
        return []
    joined = _SEPARATOR.join(text.replace(_SEPARATOR, "") for text in texts)
    joined = _ALL_SPACE.sub(" ", unicodedata.normalize("NFC", _INVISIBLE.sub("", joined)))
    return [
        [line for line in (raw.strip() for raw in part.split(LINE_BREAK)) if line]
        for part in joined.split(_SEPARATOR)
    ]


def _ascii_match_table() -> tuple[bytes, bytes]:
    """For ASCII text, match form in one bytes.translate: letters and digits lower-cased,
    everything else a space, control characters (what _INVISIBLE removes) deleted."""
    table = bytearray(b" " * 256)
    for code in range(128):
        if chr(code).isalnum():
            table[code] = ord(chr(code).lower())
    deleted = bytes(c for c in range(128) if _INVISIBLE.match(chr(c)))
    return bytes(table), deleted


_ASCII_TABLE, _ASCII_DELETED = _ascii_match_table()


def match_words(text: str) -> list[str]:
    """The words of the text's match form (see :func:`match_form`)."""
    if text.isascii():
        # The same result as the general path (a property test holds them together),
        # three times faster: most feed text is ASCII.
        return text.encode("ascii").translate(_ASCII_TABLE, _ASCII_DELETED).decode().split()
    text = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text)).casefold()
    return _NON_WORD.sub(" ", text).split()


def match_form(text: str) -> str:
    """Comparison form: NFKC, case-folded, every run of punctuation or whitespace
    turned into one space. Two texts that differ only in those compare equal."""
    return " ".join(match_words(text))


def content_hash(text: str) -> str:
    """Hash of a text's match form: the exact-dedup key of its content."""
    return hashlib.sha256(match_form(text).encode("utf-8")).hexdigest()[:32]


def word_count(text: str) -> int:
    """Words as a reader counts them: space-separated tokens with a letter or digit in
    them ("al-Qaeda’s" is one word; a lone dash is none)."""
    return sum(1 for token in text.split() if token.isalnum() or _ALNUM.search(token))


def shorten(text: str, limit: int) -> str:
    """Cut ``text`` at a word boundary so that it fits ``limit`` characters."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"

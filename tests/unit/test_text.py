from pipelines.text import content_hash, match_form, normalize_line, shorten, word_count


def test_normalize_line_turns_every_space_into_one_plain_space() -> None:
    assert normalize_line("\u00a0 death of\u00a0 Asghar\u2009Bashpour \t") == (
        "death of Asghar Bashpour"
    )


def test_normalize_line_drops_invisible_characters_and_composes() -> None:
    assert normalize_line("cafe\u0301\u200b bar\ufeff") == "café bar"


def test_normalize_line_keeps_curly_quotes_and_dashes() -> None:
    assert normalize_line("“one” – Iran’s") == "“one” – Iran’s"


def test_match_form_ignores_case_punctuation_and_width() -> None:
    assert match_form("Head Of Iran’s IRGC!") == match_form("head of iran s irgc")
    assert match_form("ＡＢＣ-def") == "abc def"


def test_content_hash_is_stable_across_cosmetic_differences() -> None:
    assert content_hash("Hello,  World.") == content_hash("hello world")
    assert content_hash("Hello World") != content_hash("Hello Word")
    assert len(content_hash("x")) == 32


def test_word_count_counts_words_as_a_reader_does() -> None:
    assert word_count("al-Qaeda’s forces – in 2020 “quoted” ...") == 5


def test_shorten_cuts_at_a_word_boundary() -> None:
    assert shorten("short", 10) == "short"
    cut = shorten("one two three four five six", 15)
    assert cut == "one two three…" and len(cut) <= 15

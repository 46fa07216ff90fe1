"""The spec's token estimate: Han characters + words × 1.3, rounded half up."""

import pytest

from bot.chat.usage import count, estimate_tokens


@pytest.mark.parametrize(
    ("text", "han", "words", "tokens"),
    [
        ("你好", 2, 0, 2),
        ("hello world", 0, 2, 3),  # 2.6 → 3
        ("one", 0, 1, 1),  # 1.3 → 1
        ("a b c d e", 0, 5, 7),  # 6.5 → 7: half rounds up
        ("GPT-4o", 0, 2, 3),  # '-' splits words
        ("2023年4月2日上海气温13~21℃", 7, 5, 14),  # 7 + 6.5 = 13.5 → 14
        ("我用Python写了3个API", 5, 3, 9),  # 5 + 3.9 = 8.9 → 9
        ("don't", 0, 2, 3),  # an apostrophe splits too
        ("", 0, 0, 0),
        ("！？，。 \n\t…", 0, 0, 0),  # punctuation and spaces count nothing
        ("😀👍", 0, 0, 0),  # so does emoji
        ("１２３ＡＢＣ", 0, 1, 1),  # full-width letters and digits form a word
        ("Привет мир", 0, 2, 3),  # letters of any script form words
        ("〇𠀋", 2, 0, 2),  # 〇 and ideographs beyond the BMP are Han
        ("snake_case", 0, 2, 3),  # '_' is not part of a word
    ],
)
def test_counts_and_rounding(text, han, words, tokens):
    assert (count(text).han, count(text).words) == (han, words)
    assert estimate_tokens(text) == tokens


def test_several_texts_are_counted_together_and_rounded_once():
    # 3 separate single words would round to 1 each (3); together they are 3.9 → 4.
    assert estimate_tokens(["one", "two", "three"]) == 4
    assert estimate_tokens(["你好", "world"]) == estimate_tokens("你好 world")

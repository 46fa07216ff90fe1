"""Properties of the dialogue trimming and the token estimate, over generated inputs (hypothesis)."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.chat.dialogue import MAX_CHARS, Turn, trim_dialogue
from bot.chat.usage import count, estimate_tokens

# Few examples and no deadline: these run on a loaded 2-core box next to real servers.
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

lengths = st.one_of(st.integers(1, 40), st.integers(1, 2000))


@st.composite
def dialogues(draw) -> list[Turn]:
    """An odd number of turns, user first, contents of any length up to 2000 each."""
    pairs = draw(st.integers(0, 12))
    sizes = draw(st.lists(lengths, min_size=2 * pairs + 1, max_size=2 * pairs + 1))
    return [Turn(("user", "assistant")[i % 2], chr(0x4E00 + i % 50) * n) for i, n in enumerate(sizes)]


def total(turns) -> int:
    return sum(len(t.content) for t in turns)


@FAST
@given(dialogues())
def test_trimming_keeps_the_longest_suffix_of_whole_pairs_that_fits(turns):
    trimmed = trim_dialogue(turns)
    assert [t.role for t in trimmed] == ["user", "assistant"] * (len(trimmed) // 2) + ["user"]
    assert trimmed[-1] == turns[-1]  # the question is always kept
    assert trimmed == turns[len(turns) - len(trimmed) :]  # a suffix of the input
    assert (len(turns) - len(trimmed)) % 2 == 0  # made of whole pairs
    assert total(trimmed) <= MAX_CHARS or len(trimmed) == 1
    if len(trimmed) < len(turns):  # the longest such suffix: one more pair would not fit
        assert total(turns[len(turns) - len(trimmed) - 2 :]) > MAX_CHARS


@FAST
@given(dialogues(), st.integers(0, MAX_CHARS))
def test_a_smaller_budget_never_keeps_more(turns, budget):
    assert len(trim_dialogue(turns, budget)) <= len(trim_dialogue(turns))
    assert total(trim_dialogue(turns, budget)) <= budget or len(trim_dialogue(turns, budget)) == 1


# Text mixing the classes the estimate tells apart: Han, letters and digits of several scripts,
# punctuation, spaces, emoji, combining marks, and whatever else hypothesis draws.
texts = st.text(
    st.one_of(
        st.sampled_from("你好世界〇𠀋中文"),
        st.sampled_from("abcXYZ019éßПр١٢"),
        st.sampled_from(" \n\t-_'.,!？。😀\u0301\u200d"),
        st.characters(codec="utf-8"),
    ),
    max_size=60,
)
han_only = st.text(st.sampled_from("你好世界中文〇𠀋豈\u3400"), max_size=60)


@FAST
@given(texts, texts)
def test_counts_add_up_over_texts_joined_by_a_separator(a, b):
    assert count(a + " " + b) == count(a) + count(b)
    assert estimate_tokens([a, b]) == estimate_tokens(a + "\n" + b)


def rounded_half_up(estimate: int, exact: Fraction) -> bool:
    """Whether `estimate` is `exact` rounded half up: within half a token of it, a tie going up."""
    return exact - Fraction(1, 2) < estimate <= exact + Fraction(1, 2)


@FAST
@given(st.integers(0, 60), st.integers(0, 60), st.sampled_from([" ", "，", "-", "\n"]))
def test_tokens_are_han_plus_words_times_1_3_rounded_half_up(han, words, separator):
    text = "中" * han + separator + separator.join(["word"] * words)
    assert rounded_half_up(estimate_tokens(text), han + Fraction(13, 10) * words)


@FAST
@given(texts)
def test_any_text_costs_its_han_plus_words_times_1_3_rounded_half_up(text):
    counts = count(text)
    assert counts.han >= 0 and counts.words >= 0 and counts.han + counts.words <= len(text)
    assert rounded_half_up(estimate_tokens(text), counts.han + Fraction(13, 10) * counts.words)


def test_one_to_ten_words_cost_what_the_spec_says():
    # 1.3, 2.6, 3.9, 5.2, 6.5 (a tie: up), 7.8, 9.1, 10.4, 11.7, 13.0 tokens.
    assert [estimate_tokens(" ".join(["word"] * n)) for n in range(11)] == [0, 1, 3, 4, 5, 7, 8, 9, 10, 12, 13]


@FAST
@given(texts, st.integers(0, 30))
def test_each_han_character_adds_one_token_and_every_ten_words_add_thirteen(text, n):
    assert estimate_tokens(text + " " + "中" * n) == estimate_tokens(text) + n
    assert estimate_tokens(text + " a" * 10 * n) == estimate_tokens(text) + 13 * n


@FAST
@given(han_only)
def test_han_only_text_counts_one_token_per_character(text):
    assert estimate_tokens(text) == len(text)
    assert count(text).words == 0


@FAST
@given(st.text(st.sampled_from(" \t\n,.!?;:-_()[]{}'\"，。！？、…😀👍"), max_size=60))
def test_punctuation_spaces_and_emoji_count_nothing(text):
    assert estimate_tokens(text) == 0


@FAST
@given(st.lists(texts, max_size=6))
def test_counting_together_rounds_once(parts):
    together = estimate_tokens(parts)
    # Each separate rounding moves a count by at most half a token; together is rounded once.
    assert abs(together - sum(estimate_tokens(p) for p in parts)) * 2 <= len(parts) + 1
    assert together == estimate_tokens(" ".join(parts))

"""Trimming keeps the newest whole pairs within 2000 characters, starting with 'user'."""

from bot.chat.dialogue import Turn, trim_dialogue


def turns(*lengths):
    return [Turn(("user", "assistant")[i % 2], "x" * n) for i, n in enumerate(lengths)]


def test_nothing_is_forgotten_within_budget():
    dialogue = turns(1000, 999, 1)
    assert trim_dialogue(dialogue) == dialogue


def test_pairs_are_forgotten_oldest_first_until_it_fits():
    dialogue = turns(700, 700, 700, 700, 700)
    assert trim_dialogue(dialogue) == dialogue[4:]  # 3500 → 2100 is still over → 700
    assert trim_dialogue(turns(600, 600, 600, 600, 600)) == turns(600, 600, 600)  # 3000 → 1800


def test_a_trimmed_dialogue_always_starts_with_user_and_alternates():
    for lengths in [(1, 2000, 1), (1999, 1, 1, 1, 1), (700, 700, 700, 700, 700, 700, 700)]:
        trimmed = trim_dialogue(turns(*lengths))
        assert [t.role for t in trimmed] == ["user", "assistant"] * (len(trimmed) // 2) + ["user"]
        assert sum(len(t.content) for t in trimmed) <= 2000


def test_the_question_alone_is_kept_even_at_2000():
    dialogue = turns(5, 5, 2000)
    assert trim_dialogue(dialogue) == dialogue[2:]

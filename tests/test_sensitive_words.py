"""The banned-word matcher, the word files and the stream filter, as an operator and a reader meet them."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rapidfuzz.utils import default_process

from bot import create_app
from bot.safety.stream import StreamFilter
from bot.safety.text import LETTERED_SYMBOLS, _cuttable, normalise
from bot.safety.wordfile import WordFileError, read_words, word_problem
from bot.safety.words import MASK, WordList
from config.settings import ConfigError

WORDS = WordList(["敏感词", "ABC", "违禁"])


@pytest.mark.parametrize(
    "text",
    ["敏感词", "敏 感 词", "敏*感*词", "敏、感、词", "敏\u200b感\u200d词", "敏\n感\t词", "敏——感……词",
     "「敏」【感】《词》", "ＡＢＣ", "abc", "a.b.c", "A b C", "ⓐⓑⓒ", "🄰🄱🄲", "违😀禁", "违\u3000禁", "违_禁"],
)  # fmt: skip
def test_evasions_still_match(text):
    assert WORDS.hits(text)
    masked, count = WORDS.mask(text)
    assert count >= 1 and MASK in masked and not any(WORDS.hits(part) for part in unmasked(masked))


@pytest.mark.parametrize("text", ["敏感的词", "正常的一句话", "ab", "abd c", "违 反 禁 令"])
def test_clean_text_passes_untouched(text):
    assert not WORDS.hits(text) and WORDS.mask(text) == (text, 0)


def test_every_matched_character_is_masked_and_the_rest_delivered():
    assert WORDS.mask("你好，敏*感*词！还有ＡＢＣ。") == ("你好，＊*＊*＊！还有＊＊＊。", 2)


def unmasked(shown: str) -> list[str]:
    """What a reader sees between masks: a mask is a barrier (what is either side is not joined)."""
    return shown.split(MASK)


def test_a_mask_is_a_barrier_not_a_separator():
    masked, count = WORDS.mask("敏感敏感词词")
    assert (masked, count) == ("敏感＊＊＊词", 1) and not any(WORDS.hits(part) for part in unmasked(masked))


def test_kangxi_radicals_and_enclosed_ideographs_read_as_the_ideograph():
    assert WordList(["人民"]).hits("⼈民") and WordList(["秘密"]).hits("㊙密")


def test_the_lettered_symbols_list_is_what_unicodedata_says():
    lettered = {
        c for c in range(0x110000)
        if not chr(c).isalnum() and not 0xD800 <= c < 0xE000
        and any(x.isalnum() for x in unicodedata.normalize("NFKC", chr(c))) and c != 0x20A8
    }  # fmt: skip

    listed = {c for c in range(0x110000) if not 0xD800 <= c < 0xE000 and re.fullmatch(f"[{LETTERED_SYMBOLS}]", chr(c))}
    assert listed == lettered


@pytest.mark.parametrize(
    "word, problem",
    [("", "is empty"), ("   ", "is empty"), ("x" * 65, "has 65 characters, at most 64"), ("***", "no letter or digit")],
)
def test_words_that_cannot_be_banned_say_why(word, problem):
    assert problem in word_problem(word)
    assert word_problem("x" * 64) is None


def test_a_word_file_saved_with_a_byte_order_mark_keeps_its_first_comment_a_comment():
    """Windows Notepad saves UTF-8 with a BOM: the heading `# 违禁词列表` must not ban 违禁词列表."""
    assert read_words("\ufeff# 违禁词列表\n敏感词\n".encode(), "w.txt") == ["敏感词"]
    assert read_words("\ufeff敏感词\n".encode(), "w.txt") == ["敏感词"]


def test_a_word_file_takes_comments_and_blank_lines():
    data = "# comment\n\n敏感词\n  two words  \r\n".encode()
    assert read_words(data, "w.txt") == ["敏感词", "two words"]


@pytest.mark.parametrize(
    "data, said",
    [(b"ok\n\xff\xfebad\n", "w.txt:2: not UTF-8"), ("ok\n\n" + "长" * 65 + "\n", "w.txt:3: the word has 65 characters"),
     (b"ok\n...\n", "w.txt:2: the word has no letter or digit")],
)  # fmt: skip
def test_a_bad_word_file_is_refused_naming_file_and_line(data, said):
    with pytest.raises(WordFileError, match=said):
        read_words(data if isinstance(data, bytes) else data.encode(), "w.txt")


def test_a_bad_word_file_stops_start_up_with_one_line(config, tmp_path):
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text("好词\n", encoding="utf-8")
    bad.write_bytes("第一行\n".encode() + b"\xc3\x28\n")
    with pytest.raises(ConfigError) as error:
        create_app({**config, "BOT_SENSITIVE_WORDS_FILES": f"{good},{bad}"})
    assert str(error.value) == (
        f"configuration error: BOT_SENSITIVE_WORDS_FILES names a bad file: {bad}:2: not UTF-8 (byte 1 of the line)"
    )
    with pytest.raises(ConfigError, match="missing.txt: cannot be read"):
        create_app({**config, "BOT_SENSITIVE_WORDS_FILES": str(tmp_path / "missing.txt")})


def run_stream(words: WordList, pieces: list[str]) -> list[str]:
    screen = StreamFilter(words)
    return [screen.feed(piece) for piece in pieces] + [screen.finish()]


def test_a_word_split_across_pieces_is_masked_before_any_of_it_is_released():
    released = run_stream(WORDS, ["你好敏", "感", "词，再见"])
    assert "".join(released) == "你好＊＊＊，再见"
    assert not any("敏" in r or "感" in r for r in released)


FILLER = st.text(alphabet="你好的是 ，。*、a感敏词bc", max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    before=FILLER, after=FILLER, spaced=st.sampled_from(["敏感词", "敏 感 词", "敏*感*词", "ＡＢＣ"]), data=st.data()
)
def test_no_released_piece_carries_a_banned_word_wherever_the_stream_is_cut(before, after, spaced, data):
    text = before + spaced + after
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=len(text))))
    pieces = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    released = run_stream(WORDS, pieces)
    shown = "".join(released)
    assert shown == WORDS.mask(text)[0]  # what was released is the whole answer, masked as one text
    for end in range(1, len(released) + 1):  # and no prefix a reader has seen holds the word
        assert not any(WORDS.hits(part) for part in unmasked("".join(released[:end])))


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet="你好的是 ，。a", max_size=30), size=st.integers(1, 5))
def test_a_clean_stream_comes_out_unchanged_and_in_order(text, size):
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    assert "".join(run_stream(WORDS, pieces)) == text


def test_normalise_is_stable_on_its_own_reading():
    for text in ["ＡＢＣ　敏感", "Straße", "Ⅻ℅", "e\u0301"]:
        assert normalise(normalise(text)) == normalise(text)


def whole_text_reading(text: str) -> str:
    """The reading by definition: NFKC of the whole text, separators dropped, read again after NFKC."""
    if re.search(f"[{LETTERED_SYMBOLS}]", text):
        text = unicodedata.normalize("NFKC", text)
    read = default_process(text).replace(" ", "")
    return default_process(unicodedata.normalize("NFKC", read)).replace(" ", "")


# Characters NFKC changes or joins (ＡＢＣ, ｶﾞ = ガ, ᄀ + ᅡ = 가, e + U+0301, Ⅻ, ½, ℃, ⓐ, compatibility
# ideographs, math letters), between the ideographs and ASCII where a long reading is cut.
TRICKY = (
    "你好敏感词违禁 ，。a1Zｑ１ＱＱ２３（）ｶﾞﾟｱカガか\u3099각가ㄱㅏ\u1100\u1161"
    "Ⅻ½²ﬁ℃㎡ⓐ⼈e\u0301éΣς\uf900𝐀😀\ufe0f\u0b47\u0b3e"
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(alphabet=st.sampled_from(TRICKY), max_size=600))
def test_the_reading_normalises_only_what_needs_it_and_reads_as_the_whole_text_would(text):
    assert normalise(text) == whole_text_reading(text)


@pytest.mark.parametrize(
    "pair", ["ｶﾞ", "カﾞ", "\u1100\u1161", "ㄱㅏ", "각\u11a8", "e\u0301", "ｑ１", "ⓐ½", "\u0b47\u0b3e"]
)
def test_characters_nfkc_joins_are_read_together_wherever_a_long_reading_is_cut(pair):
    for at in range(200):  # the pair straddles every place the reading could be halved
        text = "中" * at + pair + "文" * (200 - at) + "１"  # the wide digit: the reading is not normal
        assert normalise(text) == whole_text_reading(text), at


def test_a_wide_letter_in_a_long_answer_is_read_in_place():
    answer = "这是一个很长的回答" * 100
    wide = answer[:450] + "ＱＱ号１２３，敏 感 词" + answer[450:]
    assert normalise(wide) == normalise(answer[:450]) + "qq号123敏感词" + normalise(answer[450:])
    assert WORDS.hits(wide) and WordList(["QQ号123"]).hits(wide)


def test_a_reading_is_cut_only_where_nfkc_can_cut():
    """Nothing before a cut point changes it or what follows: class 0, NFKC-normal, never composed onto."""
    composed_onto = {0x1161 + i for i in range(21)} | {0x11A8 + i for i in range(27)}  # Hangul V and T jamo
    for code in range(0x110000):
        decomposition = unicodedata.decomposition(chr(code)).split()
        if len(decomposition) == 2 and not decomposition[0].startswith("<"):
            composed_onto.add(int(decomposition[1], 16))
    for code in range(0x110000):
        char = chr(code)
        if _cuttable(char):
            assert unicodedata.combining(char) == 0 and unicodedata.is_normalized("NFKC", char), hex(code)
            assert code not in composed_onto, hex(code)

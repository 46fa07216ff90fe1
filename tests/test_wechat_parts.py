"""Parts of an answer, as the follower reads them: cut at sentence ends, within WeChat's passive limit,
and together exactly the answer, however the model's text arrives and whenever a part is taken."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.wechat.parts import CLOSERS, ENDS, PART_BYTES, next_part, split_parts
from bot.wechat.protocol import PASSIVE_LIMIT_BYTES, cdata_safe, xml_text
from bot.wechat.texts import COMPLETE, STILL_WRITING

# Text a model might write, weighted towards what is hard: emoji (4 bytes, and joined sequences),
# CDATA's end marker, sentence ends of both scripts, line breaks, and characters XML cannot carry.
PIECES = st.sampled_from(["😀", "👩‍👩‍👧", "]]>", "。", "！", "？", ". ", "\n", "汉", "a", "3.14", "”", "\x00", "；"])
ANSWERS = st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=400).map("".join)


def shown_in_xml(part: str, note: str) -> str:
    """A part as a follower's WeChat reads it from the reply's CDATA."""
    xml = f"<xml><Content><![CDATA[{cdata_safe(part + note)}]]></Content></xml>"
    return ET.fromstring(xml).findtext("Content") or ""


@settings(max_examples=300, deadline=None)
@given(answer=ANSWERS, arrivals=st.lists(st.integers(0, 60), max_size=40), takes=st.lists(st.booleans(), max_size=40))
def test_the_parts_taken_while_writing_and_after_are_exactly_the_answer(answer, arrivals, takes):
    answer = xml_text(answer)  # as bot/wechat/parts.showable makes it before anything is shown
    written, shown, parts = 0, 0, []
    for step, take in zip(arrivals, takes, strict=False):  # the model writes a piece, a delivery may take a part
        written = min(len(answer), written + step)
        if take:
            part = next_part(answer[shown:written], final=False, whole_sentences=step % 2 == 0)
            parts.append(part)
            shown += len(part)
    parts += split_parts(answer[shown:])
    assert "".join(parts) == answer
    for part in parts:
        assert len((part + STILL_WRITING).encode()) <= PASSIVE_LIMIT_BYTES
        # ]]> and emoji survive the reply (XML reads every line end as \n, as WeChat shows it)
        assert shown_in_xml(part, COMPLETE) == (part + COMPLETE).replace("\r\n", "\n").replace("\r", "\n")


@given(text=ANSWERS)
def test_a_part_taken_while_writing_ends_at_a_sentence_end_when_it_must_not_cut_one(text):
    part = next_part(text, final=False)
    if part and len(text.encode()) <= PART_BYTES:
        end = len(part) - 1
        while part[end] in CLOSERS:  # a closing quote stays with its sentence
            end -= 1
        assert part[end] in ENDS or (part[end] == "." and text[end + 1].isspace())


def test_a_part_closes_its_quote_and_a_decimal_point_ends_no_sentence():
    assert next_part("他说：“好。”然后", final=False) == "他说：“好。”"
    assert next_part("圆周率约为3.14然后", final=False) == ""
    assert next_part("It is 3.14. Then", final=False) == "It is 3.14."


def test_without_a_sentence_end_a_whole_reply_is_still_cut_and_a_closing_delivery_takes_what_there_is():
    long = "汉" * 1000  # more than a reply holds, no sentence end
    part = next_part(long, final=False)
    assert part and len(part.encode()) <= PART_BYTES
    assert next_part("没有句号的半句", final=False) == ""
    assert next_part("没有句号的半句", final=False, whole_sentences=False) == "没有句号的半句"

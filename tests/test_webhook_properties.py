"""Any well-signed message WeChat could send gets a reply or `success`, never a Python error (hypothesis).

A message that raises in the bot is claimed without a reply: WeChat's retries then wait in silence
and the follower gets nothing. These feed the door arbitrary messages of every type, with fields
missing, empty or odd, from a follower and from an admin, and the odd inputs found once by hand.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.wechat import simulate
from tests.conftest import ACCOUNT, ADMIN

FAST = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)

# Text that fits in a CDATA section (what WeChat itself would send): no XML-illegal characters, no `]]>`.
cdata_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from("\n\t"), max_size=40
).filter(lambda t: "]]>" not in t)
commands = st.sampled_from(
    ["/grant oX ²", "/grant oX ½", "/grant", "/reset", "/rotate x", "/stats", "/help", "/nope a b c", "/menu"]
)
words = st.sampled_from(["key", "继续", "GET_KEY", "RESET_CHAT", "MY_USAGE", "ADMIN_STATS", "ADMIN_", ""])
field_value = cdata_text | commands | words | st.integers(0, 2**63)
msg_types = st.sampled_from(
    ["text", "image", "voice", "video", "shortvideo", "location", "link", "file", "event", "miniprogrampage", "x"]
)
events = st.sampled_from(["subscribe", "unsubscribe", "CLICK", "VIEW", "SCAN", "LOCATION", "MASSSENDJOBFINISH", "?"])
optional_fields = st.dictionaries(
    st.sampled_from(["Content", "Recognition", "EventKey", "Ticket", "PicUrl", "MediaId", "Title", "Url", "Label"]),
    field_value,
    max_size=4,
)


@st.composite
def messages(draw) -> tuple[str, str, dict]:
    sender = draw(st.sampled_from([ADMIN, "oProp" + "a" * 20, "oProp" + "b" * 20]))
    msg_type = draw(msg_types)
    fields = draw(optional_fields)
    if msg_type == "event":
        # An Event that is empty or blank is junk (wechatpy cannot read it): 400, tested below.
        fields["Event"] = draw(events | cdata_text.filter(str.strip))
    elif draw(st.booleans()):
        fields["MsgId"] = draw(st.integers(1, 2**64 - 1))
    return sender, msg_type, fields


def errors_logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@FAST
@given(messages())
def test_every_well_signed_message_gets_a_reply_or_success(client, upstream, caplog, message):
    sender, msg_type, fields = message
    caplog.clear()
    xml = simulate.message_xml(ACCOUNT, sender, msg_type, **fields)
    params, body = simulate.sign(ACCOUNT, xml, "safe")
    response = client.post("/wechat", query_string=params, data=body)
    assert response.status_code == 200, response.data[:200]
    assert response.data == b"success" or simulate.open_reply(ACCOUNT, response.data, encrypted=True)["Content"]
    assert errors_logged(caplog) == []


@pytest.mark.parametrize(
    ("sender", "msg_type", "fields"),
    [
        pytest.param("oProp" + "c" * 20, "event", {"Event": "CLICK"}, id="click-without-eventkey"),
        pytest.param(ADMIN, "event", {"Event": "CLICK"}, id="admin-click-without-eventkey"),
        pytest.param(ADMIN, "text", {"Content": "/grant oX ²", "MsgId": 7}, id="grant-superscript-two"),
    ],
)
def test_odd_messages_found_by_hand_are_answered(client, upstream, caplog, sender, msg_type, fields):
    params, body = simulate.sign(ACCOUNT, simulate.message_xml(ACCOUNT, sender, msg_type, **fields), "safe")
    response = client.post("/wechat", query_string=params, data=body)
    assert response.status_code == 200
    assert response.data == b"success" or "用法" in simulate.open_reply(ACCOUNT, response.data, True)["Content"]
    assert errors_logged(caplog) == []


@pytest.mark.parametrize(
    ("msg_type", "fields"),
    [("text", {"Content": "hi", "MsgId": "abc"}), ("event", {"Event": ""}), ("event", {"Event": " \n"})],
    ids=["msgid-not-a-number", "empty-event", "blank-event"],
)
def test_junk_is_400_not_an_error(client, upstream, caplog, msg_type, fields):
    xml = simulate.message_xml(ACCOUNT, "oProp" + "d" * 20, msg_type, **fields)
    params, body = simulate.sign(ACCOUNT, xml, "safe")
    assert client.post("/wechat", query_string=params, data=body).status_code == 400
    assert errors_logged(caplog) == [] and upstream.calls == 0

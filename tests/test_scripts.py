"""The store's Lua scripts and their callers agree by name (bot/store/scripts.py), and the replies a
follower is owed read the same on every delivery though no script words them (bot/store/owed.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.store import keyspace
from bot.store.connection import connect, disconnect
from bot.store.scripts import Script, ScriptContractError
from bot.wechat import texts
from tests.conftest import ACCOUNT
from tests.follower import Follower, flask_post, recorded

BOT = Path(__file__).resolve().parent.parent / "bot"
WHO = "oScripts00000000000000000001"


def test_no_lua_in_the_service_escapes_the_named_contract():
    """Every script is registered through Script, whose bindings are checked: none reaches Redis with
    KEYS or ARGV used by position, or without its inputs named."""
    registering = [p.relative_to(BOT) for p in BOT.rglob("*.py") if "register_script(" in p.read_text()]
    assert [str(p) for p in registering] == ["store/scripts.py"]
    positional = re.compile(r"(KEYS|ARGV)\[\d+\]")
    for path in BOT.rglob("*.py"):
        for line in path.read_text().splitlines():
            if positional.search(line):  # allowed only as a binding at a script's top (or in the docs of one)
                assert re.match(r"^local \w+ = (tonumber\()?(KEYS|ARGV)\[\d+\]", line) or "`" in line, (path, line)


def _define(lua: str, keys: tuple[str, ...], argv: tuple[str, ...] = (), tail: str = "") -> type[Script]:
    return type("Probe", (Script,), {"LUA": lua, "KEYS": keys, "ARGV": argv, "TAIL": tail})


@pytest.mark.parametrize(
    "lua, keys, argv, tail",
    [
        ("local a = KEYS[1]\nlocal b = KEYS[2]\nreturn 1", ("b", "a"), (), ""),  # another order
        ("local a = KEYS[1]\nreturn 1", ("a", "b"), (), ""),  # a key the script does not bind
        ("local a = KEYS[1]\nlocal n = ARGV[1]\nreturn ARGV[2]", ("a",), ("n",), ""),  # ARGV by position
        ("local a = KEYS[1]\nlocal n = ARGV[1]\nreturn n", ("a",), ("n",), "rest"),  # a tail it does not bind
        ("local a = KEYS[1]\nlocal rest = {unpack(ARGV, 3)}\nreturn 1", ("a",), ("n",), "rest"),  # tail misplaced
        ("local a = KEYS[1]\nlocal sent = ARGV[1]\nreturn 1", ("a",), ("sent",), ""),  # run()'s own keyword
    ],
)
def test_a_script_whose_bindings_disagree_with_its_type_is_refused_when_defined(lua, keys, argv, tail):
    with pytest.raises(ScriptContractError):
        _define(lua, keys, argv, tail)


SET_LUA = """
local target = KEYS[1]
local other = KEYS[2]
local value = ARGV[1]
local words = {unpack(ARGV, 2)}
redis.call('SET', target, value .. table.concat(words, ' '))
return other and 2 or 1
"""


@pytest.fixture
def probe(redis_server):
    client = connect(redis_server.url)
    yield _define(SET_LUA, ("target", "other"), ("value",), "words")(client)
    disconnect(client)


def test_a_call_naming_a_wrong_or_missing_input_reaches_no_redis(probe, redis):
    with pytest.raises(ScriptContractError, match="vaule"):
        probe(target="k", other="o", vaule="x")
    with pytest.raises(ScriptContractError, match="value"):
        probe(target="k", other="o")
    with pytest.raises(ScriptContractError, match="extra"):  # every input named, and one more
        probe(target="k", other="o", value="x", extra="y")
    with pytest.raises(ScriptContractError, match="tail"):  # trailing inputs to a script that takes none
        _define("local a = KEYS[1]\nreturn 1", ("a",))(probe.client)("x", a="k")
    assert not redis.exists("k")
    assert probe("a", "b", target="k", other=None, value="v:") == 1  # an optional last key, left out
    assert redis.get("k") == "v:a b"
    assert probe.run(target="k", other="o", value="quick") == 2  # the hot path's quick way
    assert redis.get("k") == "quick"


@pytest.fixture
def follower(client):
    return Follower(flask_post(client), ACCOUNT, WHO)


def test_every_delivery_of_a_continue_reads_the_same_part_and_hands_out_no_other(follower, upstream, redis):
    answer = "".join(f"第{i}段" + "汉" * 40 + "\n" for i in range(30))  # three parts
    upstream.reset(answer=lambda m: answer)
    first = follower.say("long", msg_id=801)
    assert first.endswith(texts.MORE) and recorded(redis, WHO)
    assert follower.say("long", msg_id=801) == first  # WeChat's retry of the question
    second = follower.say("继续", msg_id=802)
    assert second.endswith(texts.MORE) and second != first
    assert [follower.say("继续", msg_id=802) for _ in range(2)] == [second] * 2  # its retries
    third = follower.say("继续", msg_id=803)
    assert not third.endswith(texts.MORE)
    assert "".join(p.removesuffix(texts.MORE) for p in (first, second, third)) == answer.rstrip("\n")
    assert follower.say("继续", msg_id=804) == texts.NOTHING_OWED == follower.say("继续", msg_id=804)


@pytest.mark.parametrize("mimic", ["\x00owed:w01", "\x00owed:n11", "\x00key:new"])
def test_an_answer_made_to_look_like_a_stored_description_reads_as_written(follower, upstream, redis, mimic):
    """A follower can have the model answer anything: an answer shaped like an owed reply's (or a
    key reply's) stored marker is still that answer's text, on every delivery."""
    upstream.reset(answer=lambda m: mimic + "看我")
    shown = mimic.replace("\x00", "") + "看我"
    assert follower.say("模仿", msg_id=811) == shown
    assert recorded(redis, WHO)
    assert follower.say("模仿", msg_id=811) == shown
    assert "sk-" not in shown and redis.hget(keyspace.message(WHO, "811"), "reply") == shown


def _as_monitor_shows(text: str) -> str:
    """`text` as MONITOR prints an argument: printable ASCII as is, every other byte as \\xhh."""
    named = {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", ord('"'): '\\"', ord("\\"): "\\\\"}
    return "".join(named.get(b) or (chr(b) if 32 <= b < 127 else f"\\x{b:02x}") for b in text.encode())


def test_no_wording_reaches_a_script(follower, upstream, redis):
    """The door's texts (more to come, still writing, question queued, nothing owed) are the door's:
    they reach no script, which store and answer what a reply is made of."""
    answer = "".join(f"第{i}段" + "汉" * 40 + "\n" for i in range(20))  # two parts
    with redis.monitor() as monitor:
        upstream.reset(answer=lambda m: answer if m[-1]["content"] == "long" else "回答")
        replies = [follower.say("long")]
        assert recorded(redis, WHO)
        replies.append(follower.say("asked while a part is owed"))
        assert recorded(redis, WHO)
        replies += [follower.say("继续"), follower.say("继续")]
        redis.echo("monitor-done")
        sent = []
        for command in monitor.listen():
            if command["command"] == "ECHO monitor-done":
                break
            sent.append(command["command"])
    assert replies[0].endswith(texts.MORE) and replies[1].endswith(texts.QUEUED_NOTE)  # the texts were shown
    assert replies[2:] == ["回答", texts.NOTHING_OWED]
    scripts = [c for c in sent if c.startswith("EVALSHA")]
    assert len(scripts) >= 5
    for wording in (texts.MORE, texts.WAITING, texts.QUEUED_NOTE, texts.NOTHING_OWED):
        assert not [c for c in scripts if _as_monitor_shows(wording) in c]

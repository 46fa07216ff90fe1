"""run_script: a script's caller is told once its command is on its way, before Redis answers."""

from __future__ import annotations

import threading
import time

import pytest
import redis as redis_py

from bot.store.connection import connect, disconnect, run_script

# Counts its runs in KEYS[1]; the first run holds Redis for ARGV[1] microseconds.
SLOW = """
local runs = redis.call('INCR', KEYS[1])
local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
if runs == 1 then
  repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start >= tonumber(ARGV[1])
end
return runs
"""


def run(client, script, key, hold_us=0, idempotent=True):
    sent = []
    started = time.monotonic()
    answer = run_script(
        client, script, [key], [hold_us], lambda: sent.append(time.monotonic() - started), idempotent=idempotent
    )
    return answer, sent, time.monotonic() - started


def test_the_caller_is_told_before_a_slow_script_answers(redis_server, redis):
    client = connect(redis_server.url)
    try:
        script = client.register_script(SLOW)
        redis.script_load(SLOW)
        answer, sent, took = run(client, script, "ran", hold_us=500_000)
    finally:
        disconnect(client)
    assert answer == 1 and redis.get("ran") == "1"
    assert len(sent) == 1 and sent[0] < 0.25 and took >= 0.5


def test_a_script_redis_has_forgotten_is_loaded_and_run_once(redis_server, redis):
    client = connect(redis_server.url)
    try:
        script = client.register_script(SLOW)
        run(client, script, "ran")
        redis.script_flush()
        answer, sent, _ = run(client, script, "ran")
    finally:
        disconnect(client)
    assert answer == 2 and redis.get("ran") == "2" and len(sent) == 1


def test_connections_redis_dropped_while_idle_are_replaced(redis_server, redis):
    client = connect(redis_server.url)
    try:
        script = client.register_script(SLOW)
        run(client, script, "ran")  # leaves a connection in the pool
        assert redis.client_kill_filter(_type="normal", skipme=True) >= 1
        answer, sent, _ = run(client, script, "ran", idempotent=False)  # noticed before sending, not retried after
    finally:
        disconnect(client)
    assert answer == 2 and redis.get("ran") == "2" and len(sent) == 1


def test_an_answer_lost_in_a_timeout_means_the_script_is_run_again(redis_server, redis):
    """The first run's answer does not come within the client's timeout: the script is run again
    (whether the first one ran is unknown), and the caller was told once, before either answered."""
    client = redis_py.Redis.from_url(redis_server.url, decode_responses=True, socket_timeout=0.3)
    try:
        script = client.register_script(SLOW)
        redis.script_load(SLOW)
        answer, sent, took = run(client, script, "ran", hold_us=400_000)
    finally:
        client.close()
    assert answer == 2 and redis.get("ran") == "2"
    assert len(sent) == 1 and sent[0] < 0.25 and took >= 0.4


def test_an_answer_lost_after_sending_a_script_not_safe_to_repeat_is_an_error(redis_server, redis):
    client = redis_py.Redis.from_url(redis_server.url, decode_responses=True, socket_timeout=0.3)
    try:
        script = client.register_script(SLOW)
        redis.script_load(SLOW)
        with pytest.raises(redis_py.TimeoutError):
            run(client, script, "ran", hold_us=400_000, idempotent=False)
    finally:
        client.close()
    assert redis.get("ran") == "1"  # run once, not again


def test_after_a_burst_of_scripts_other_commands_still_get_connections(redis_server, redis):
    """run_script keeps only a few connections between calls: the rest go back to the pool."""
    pool = redis_py.BlockingConnectionPool.from_url(
        redis_server.url, max_connections=6, timeout=0.5, decode_responses=True
    )
    client = redis_py.Redis(connection_pool=pool)
    try:
        script = client.register_script(HOLD)
        redis.script_load(HOLD)
        burst = [threading.Thread(target=run_script, args=(client, script, [f"k{i}"], [200_000])) for i in range(6)]
        for thread in burst:
            thread.start()
        for thread in burst:
            thread.join()
        assert all(redis.get(f"k{i}") == "1" for i in range(6))  # all six ran at once: six connections
        waited = []
        other = threading.Thread(target=lambda: waited.append(client.blpop(["nothing"], 0.3)))
        other.start()  # holds one connection for 0.3 s
        started = time.monotonic()
        assert client.ping()  # and another command at the same time, with four connections kept
        assert time.monotonic() - started < 0.25
        other.join()
        assert waited == [None]  # the blocking command got its connection too, and timed out empty
    finally:
        disconnect(client)


# Holds Redis for ARGV[1] microseconds, then marks KEYS[1].
HOLD = """
local t = redis.call('TIME')
local start = t[1] * 1000000 + t[2]
repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] - start >= tonumber(ARGV[1])
return redis.call('INCR', KEYS[1])
"""

"""Traffic on all three doors of a running service, each request timed and classed as a user sees it."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, replace

import requests

from bot.wechat import texts
from tests.conftest import ACCOUNT
from tests.wechat_servers import WeChatServers

_msg_ids = itertools.count(7 * 10**17)
ANSWER = "回答："  # the upstream double's answers start so


@dataclass(frozen=True)
class Result:
    door: str  # wechat | spec | openai
    started: float
    took: float  # the answering request's time
    outcome: str  # answer | busy | other: <what came back>
    ended: float = 0.0


def wechat(base: str, openid: str, question: str) -> Result:
    """One message as WeChat delivers it: up to three deliveries, each with a 5-second deadline.

    `took` is the answering delivery's time; a silent delivery is WeChat's cue to send it again."""
    started = time.monotonic()
    outcome = WeChatServers([base], ACCOUNT, timeout=5.0).say(openid, question, next(_msg_ids))
    text = outcome.reply
    kind = "answer" if text == ANSWER + question else "busy" if text == texts.BUSY else f"other: {outcome}"
    return Result("wechat", started, outcome.reply_took, kind, time.monotonic())


def spec(base: str, key: str, question: str) -> Result:
    body = {"api_secret_key": key, "messages": [{"role": "user", "content": question}]}
    return _api("spec", base + "/api/v1/chat/completions", body, {}, question)


def openai(base: str, key: str, question: str) -> Result:
    body = {"model": "test-model", "messages": [{"role": "user", "content": question}]}
    return _api("openai", base + "/v1/chat/completions", body, {"Authorization": f"Bearer {key}"}, question)


def _api(door: str, url: str, body: dict, headers: dict, question: str) -> Result:
    started = time.monotonic()
    try:
        response = requests.post(url, json=body, headers={"Connection": "close", **headers}, timeout=10.0)
    except requests.RequestException as error:
        return Result(door, started, time.monotonic() - started, f"other: {type(error).__name__}")
    took, data = time.monotonic() - started, response.json()
    if response.status_code == 200 and data["choices"][0]["message"]["content"] == ANSWER + question:
        return Result(door, started, took, "answer")
    busy = data.get("code") == 50301 if door == "spec" else data.get("error", {}).get("type") == "server_error"
    if response.status_code == 503 and busy:
        return Result(door, started, took, "busy")
    return Result(door, started, took, f"other: {response.status_code} {data}")


class Traffic:
    """Callers sending one request after another, each in its own thread, until stop()."""

    def __init__(self, callers: list):
        self.results: list[Result] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._loop, args=(c,)) for c in callers]

    def start(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def _loop(self, caller) -> None:
        for n in itertools.count():
            if self._stop.is_set():
                return
            result = caller(f"q{n}-{threading.get_ident() % 10**6}")
            result = replace(result, ended=result.ended or time.monotonic())
            with self._lock:
                self.results.append(result)
            time.sleep(0.05)

    def stop(self) -> list[Result]:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        return self.results

    def answered_since(self, moment: float) -> set[str]:
        """Doors that gave a normal answer to a request started after `moment`."""
        with self._lock:
            return {r.door for r in self.results if r.started >= moment and r.outcome == "answer"}

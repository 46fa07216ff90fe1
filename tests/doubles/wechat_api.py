"""WeChat's server API on 127.0.0.1: access tokens, menu/create, customer-service messages, and 网页授权
(OAuth2 snsapi_base: the authorize page, which redirects back with a code, and the code's exchange).

Like WeChat, it accepts only the newest access token it issued, and a test can make any call answer
an errcode (40001, 45015, …) a number of times, or answer only after a delay (a timeout).
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from tests.doubles import JsonHandler, QuietServer


@dataclass
class Call:
    path: str
    query: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)  # when it came (a benchmark times pushes by it)


@dataclass
class State:
    token_count: int = 0
    calls: list[Call] = field(default_factory=list)
    errors: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    delays: dict[str, tuple[float, int | None]] = field(default_factory=dict)  # seconds, for how many calls
    oauth_openid: str = ""  # who "is" in WeChat when a browser comes to the authorize page
    oauth_codes: dict[str, str] = field(default_factory=dict)  # code → openid, each usable once


class WeChatApiDouble:
    def __init__(self, appid: str, secret: str):
        self.appid, self.secret = appid, secret
        self.state = State()
        self.lock = threading.Lock()
        self._server = QuietServer(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.state = State()

    def fail(self, path: str, *errcodes: int) -> None:
        """Answer the next calls to `path` with these errcodes, in order."""
        with self.lock:
            self.state.errors[path].extend(errcodes)

    def delay(self, path: str, seconds: float, times: int | None = None) -> None:
        """Answer calls to `path` (the next `times` of them, or all) only after `seconds` (longer than
        the client waits: a timeout)."""
        with self.lock:
            self.state.delays[path] = (seconds, times)

    def _delay_for(self, path: str) -> float:
        with self.lock:
            seconds, times = self.state.delays.get(path, (0.0, None))
            if times is not None:
                self.state.delays[path] = (seconds, times - 1) if times > 1 else (0.0, None)
            return seconds

    def calls_to(self, path: str) -> list[Call]:
        with self.lock:
            return [c for c in self.state.calls if c.path == path]

    @property
    def current_token(self) -> str:
        return f"TOKEN-{self.state.token_count}"

    def answer(self, path: str, query: dict[str, str], body: Any) -> dict[str, Any]:
        with self.lock:
            self.state.calls.append(Call(path, query, body))
            errors = self.state.errors[path]
            if errors:
                return {"errcode": errors.pop(0), "errmsg": "failing on purpose"}
            if path == "/sns/oauth2/access_token":
                return self._oauth_token(query)
            if path == "/cgi-bin/token":
                if (query.get("appid"), query.get("secret")) != (self.appid, self.secret):
                    return {"errcode": 40013, "errmsg": "invalid appid"}
                self.state.token_count += 1
                return {"access_token": self.current_token, "expires_in": 7200}
            if query.get("access_token") != self.current_token:
                return {"errcode": 40001, "errmsg": "invalid credential"}
            return {"errcode": 0, "errmsg": "ok"}

    def sign_in_as(self, openid: str) -> None:
        """The follower whose WeChat opens the authorize page next (网页授权 asks nothing with snsapi_base)."""
        with self.lock:
            self.state.oauth_openid = openid

    def authorize(self, query: dict[str, str]) -> str:
        """Where WeChat's authorize page sends the browser: back, with a one-time code and the state."""
        with self.lock:
            self.state.calls.append(Call("/connect/oauth2/authorize", query, None))
            code = f"CODE-{len(self.state.oauth_codes)}-{self.state.oauth_openid}"
            self.state.oauth_codes[code] = self.state.oauth_openid
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"

    def _oauth_token(self, query: dict[str, str]) -> dict[str, Any]:
        if (query.get("appid"), query.get("secret")) != (self.appid, self.secret):
            return {"errcode": 40013, "errmsg": "invalid appid"}
        openid = self.state.oauth_codes.pop(query.get("code", ""), None)
        if openid is None or query.get("grant_type") != "authorization_code":
            return {"errcode": 40029, "errmsg": "invalid code"}
        return {"access_token": "OAUTH-TOKEN", "expires_in": 7200, "openid": openid, "scope": "snsapi_base"}

    def _handler(self) -> type[JsonHandler]:
        double = self

        class Handler(JsonHandler):
            def _serve(self, body: Any) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                time.sleep(double._delay_for(url.path))
                self.send_json(200, json.dumps(double.answer(url.path, query, body)).encode())

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path == "/connect/oauth2/authorize":
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    self.send_response(302)
                    self.send_header("Location", double.authorize(query))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._serve(None)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._serve(json.loads(raw) if raw else None)

        return Handler

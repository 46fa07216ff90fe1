"""Slow and hoarding clients against the real server: gunicorn's gevent worker, as the Procfile runs it.

One worker with few connection slots, so a handful of sockets is a flood. Every 127.0.0.0/8 address
reaches this host, so each client binds its own: 127.0.0.1 is the proxy (FORWARDED_ALLOW_IPS' default),
the others are clients connecting directly.
"""

from __future__ import annotations

import http.client
import re
import select
import socket
import time

import pytest

from config.worker import REFUSAL
from tests.servers import Gunicorn

pytestmark = pytest.mark.slow

SLOTS = 12  # WORKER_CONNECTIONS
CAP = 4  # BOT_CONNECTIONS_PER_ADDRESS
DEADLINE = 1.5  # BOT_BODY_TIMEOUT
HEADERS_WITHIN = 1  # gunicorn's keepalive: here 1 s, 5 s in production
PROXY = "127.0.0.1"
SLOW_BODY = b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: bot\r\nContent-Length: 100000\r\n\r\n{"


@pytest.fixture(scope="module")
def server(tmp_path_factory, redis_server, upstream_server):
    settings = {"WORKER_CONNECTIONS": str(SLOTS), "BOT_CONNECTIONS_PER_ADDRESS": str(CAP)}
    settings |= {"BOT_BODY_TIMEOUT": str(DEADLINE), "BOT_RATE_KEY_RPM": "0"}
    gunicorn = Gunicorn(tmp_path_factory.mktemp("edge"), redis_server.url, upstream_server.url, **settings)
    gunicorn.env["WEB_CONCURRENCY"] = "1"
    gunicorn.env["GUNICORN_CMD_ARGS"] += f" --keep-alive {HEADERS_WITHIN}"
    yield gunicorn.start()
    gunicorn.stop()


@pytest.fixture
def connect(server):
    """connect(source): a connection to the server from `source`; all closed after the test."""
    opened: list[socket.socket] = []

    def connect(source: str) -> socket.socket:
        opened.append(socket.create_connection(("127.0.0.1", server.port), timeout=5, source_address=(source, 0)))
        return opened[-1]

    yield connect
    for sock in opened:
        sock.close()


def send(sock: socket.socket, data: bytes) -> bool:
    """Whether `data` went out (a refused connection may be closed before the client writes)."""
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False


def answer(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection ("" if it reset it)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def readable(sock: socket.socket, within: float) -> bool:
    return bool(select.select([sock], [], [], within)[0])


def healthz_from(server, source: str, timeout: float) -> int:
    """/healthz from `source` on a fresh connection: its status, or 0 if it did not come in `timeout`."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout, source_address=(source, 0))
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status
    except OSError:
        return 0
    finally:
        connection.close()


CHUNKED = b"POST /v1/chat/completions HTTP/1.1\r\nHost: bot\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("head", "trickle", "door"),
    [
        pytest.param(SLOW_BODY, b" ", "door=api POST /api/v1/chat/completions", id="content-length"),
        pytest.param(CHUNKED, b"1\r\n \r\n", "door=openai POST /v1/chat/completions", id="chunked"),
        # gunicorn marks an HTTP/2 stream HTTP_VERSION=2, but on HTTP/1.1 a `Version:` header sets it too.
        pytest.param(
            SLOW_BODY.replace(b"Host: bot\r\n", b"Host: bot\r\nVersion: 2\r\n"),
            b" ",
            "door=api POST /api/v1/chat/completions",
            id="version-header-claims-http2",
        ),
    ],
)
def test_a_body_sent_a_byte_at_a_time_is_cut_off_at_its_deadline(server, connect, head, trickle, door):
    sock = connect("127.0.0.3")
    sock.sendall(head)
    started, reply = time.monotonic(), b""
    while time.monotonic() - started < DEADLINE + 3:
        if readable(sock, 0.2):
            reply = answer(sock)
            break
        send(sock, trickle)  # a little every 0.2 s: the connection is never idle
    took = time.monotonic() - started
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert reply.endswith(b"request body not received within 1.5 s\n")  # and then the server closed it
    assert DEADLINE - 0.1 < took < DEADLINE + 1.5
    request_id = re.search(rb"X-Request-Id: (\w+)", reply)[1].decode()
    assert re.search(rf"\[{request_id}\] {door} status=408 ms=1\d{{3}} .*outcome=body_timeout", server.logs())


def test_healthz_is_answered_while_one_address_floods_the_worker_with_slow_bodies(server, connect):
    flood = [connect("127.0.0.2") for _ in range(SLOTS + 8)]
    for sock in flood:
        send(sock, SLOW_BODY)
    started = time.monotonic()
    # All of the flood was accepted before this connection (one worker, one queue): a barrier too.
    assert healthz_from(server, "127.0.0.4", timeout=DEADLINE + 1) == 200
    assert time.monotonic() - started < DEADLINE  # answered while the flood's bodies were still due
    refused = select.select(flood, [], [], 0.2)[0]  # answered or closed already; the rest wait for their bodies
    held = [sock for sock in flood if sock not in refused]
    assert len(held) == CAP
    assert all(answer(sock) in (b"", REFUSAL) for sock in refused)  # 503, or reset before it was read
    for sock in held:  # the ones let in are cut off at their deadline, like any slow body
        assert answer(sock).startswith(b"HTTP/1.1 408 ")
    assert "refused" in server.logs() and "BOT_CONNECTIONS_PER_ADDRESS=4" in server.logs()
    metrics = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)  # from this host: allowed
    metrics.request("GET", "/metrics")
    text = metrics.getresponse().read().decode()
    metrics.close()
    assert float(re.search(r"^xiaoyi_connections_refused_total (\S+)$", text, re.M)[1]) >= len(refused)


def test_the_proxy_address_is_not_capped(server, connect):
    """Behind nginx every client is 127.0.0.1: twice the cap of its connections, all in at once, are served."""
    body = b'{"messages": [{"role": "user", "content": "hi"}]}'
    head = (
        b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: bot\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
        % len(body)
    )
    relayed = [connect(PROXY) for _ in range(2 * CAP)]
    for sock in relayed:
        sock.sendall(head + body[:10])
    assert healthz_from(server, "127.0.0.4", timeout=5) == 200  # every relayed connection is in by now
    for sock in relayed:
        sock.sendall(body[10:])
    replies = [answer(sock, timeout=5).split(b"\r\n", 1)[0] if readable(sock, 5) else b"" for sock in relayed]
    assert replies == [b"HTTP/1.1 401 UNAUTHORIZED"] * (2 * CAP)  # each body read whole: no key in it


def test_a_request_whose_body_arrives_within_the_deadline_is_served(server, app, upstream):
    from bot.services import services

    with app.app_context():
        key = services().keys.issue("oSlowButFine")[0]
    body = b'{"api_secret_key": "%s", "messages": [{"role": "user", "content": "hi"}]}' % key.encode()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5, source_address=("127.0.0.5", 0))
    connection.putrequest("POST", "/api/v1/chat/completions")
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body[:20])
    time.sleep(DEADLINE / 3)  # a client on a slow link: the rest comes later, but in time
    connection.send(body[20:])
    response = connection.getresponse()
    assert response.status == 200 and b"\xe5\x9b\x9e\xe7\xad\x94" in response.read()  # 回答
    connection.request("POST", "/api/v1/chat/completions", body=body)  # the connection is kept and reused
    assert connection.getresponse().status == 200
    connection.close()


def test_a_body_the_app_never_reads_is_not_waited_for_past_keepalive(server, connect):
    """/healthz reads no body: it is answered at once, and gunicorn drains the body (to find the next
    request) under its keepalive timeout, so a trickle holds the connection no longer than that."""
    sock = connect("127.0.0.6")
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: bot\r\nContent-Length: 100000\r\n\r\n{")
    started, received, closed = time.monotonic(), b"", False
    while not closed and time.monotonic() - started < HEADERS_WITHIN + 3:
        if readable(sock, 0.2):
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            received, closed = received + chunk, not chunk
        elif not send(sock, b" "):
            closed = True
    assert received.startswith(b"HTTP/1.1 200 ") and closed
    assert time.monotonic() - started < HEADERS_WITHIN + 1.5


def test_slow_headers_are_cut_off_by_gunicorn(server, connect):
    """The request line and headers get `keepalive` seconds in the gevent worker (this module: 1 s)."""
    sock = connect("127.0.0.6")
    sock.sendall(b"GET /healthz HTTP/1.1\r\n")
    started = time.monotonic()
    while not readable(sock, 0.2) and time.monotonic() - started < HEADERS_WITHIN + 3:
        send(sock, b"X-Slow: 1\r\n")
    assert answer(sock) == b"" and time.monotonic() - started < HEADERS_WITHIN + 1.5


def test_a_path_cannot_forge_a_line_in_the_servers_logs(server):
    forged = "2026-11-29 08:00:00,000 INFO bot.request [forged] door=api POST /api/v1/chat/completions status=200"
    assert healthz_from(server, "127.0.0.7", timeout=5) == 200
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", "/x%0a" + forged.replace(" ", "%20") + "%0d%0a" + forged.replace(" ", "%20"))
    assert connection.getresponse().status == 404
    connection.close()
    logs = server.logs()
    assert "GET /x\\n2026-11-29 08:00:00,000 INFO bot.request [forged]" in logs
    assert not [line for line in logs.splitlines() if line.startswith("2026-11-29 08:00:00,000")]

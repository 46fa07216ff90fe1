"""Server-sent events, both ways: reading an upstream's stream and writing ours (text/event-stream)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any


def iter_data(chunks: Iterable[bytes]) -> Iterator[str]:
    """The `data` of each event in a byte stream, as soon as the blank line that ends it arrives.

    Lines of one event's data are joined with newlines; comments and other fields are skipped.
    Chunks may split lines anywhere: a line is read only once its newline has arrived.
    """
    pending = b""
    data: list[str] = []
    for chunk in chunks:
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            line = line.rstrip(b"\r")
            if not line:
                if data:
                    yield "\n".join(data)
                    data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append((value[1:] if value.startswith(b" ") else value).decode("utf-8", "replace"))
    if pending.startswith(b"data:"):
        data.append(pending[5:].lstrip(b" ").decode("utf-8", "replace"))
    if data:
        yield "\n".join(data)


def event(payload: dict[str, Any] | str) -> bytes:
    """One `data:` event; a dict is sent as compact JSON with readable Chinese."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"data: {data}\n\n".encode()

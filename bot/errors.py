"""The failures a chat request can end in, each with its stable code and HTTP status.

The spec's door answers `code`/`msg` from this table; other doors map the same kinds to their own
shapes. docs/api.md's error table is this table.
"""

from __future__ import annotations

from enum import Enum


class Failure(Enum):
    # name = (code, http_status, default message)
    BAD_REQUEST = (40001, 400, "请求体必须是 JSON 对象")
    INVALID_MESSAGES = (40002, 400, "messages 不合法")
    QUESTION_TOO_LONG = (40003, 400, "问题过长")
    BODY_TOO_LARGE = (40005, 413, "请求体过大")
    CONTENT_REFUSED = (40006, 400, "问题包含本服务不接受的内容")
    MISSING_KEY = (40101, 401, "缺少 api_secret_key")
    INVALID_KEY = (40102, 401, "api_secret_key 无效或已被撤销")
    QUOTA_EXHAUSTED = (40201, 402, "token 余额不足")
    BLOCKED = (40301, 403, "该调用方已被封禁")
    NOT_FOUND = (40401, 404, "接口不存在")
    MODEL_NOT_FOUND = (40402, 404, "模型不存在")
    METHOD_NOT_ALLOWED = (40501, 405, "请求方式不支持")
    RATE_LIMITED = (42901, 429, "请求过于频繁，请稍后再试")
    INTERNAL = (50001, 500, "服务内部错误")
    UPSTREAM_FAILED = (50201, 502, "上游模型调用失败")
    SERVICE_UNAVAILABLE = (50301, 503, "服务暂不可用，请稍后再试")
    UPSTREAM_TIMEOUT = (50401, 504, "上游模型响应超时")

    @property
    def code(self) -> int:
        return self.value[0]

    @property
    def http_status(self) -> int:
        return self.value[1]

    @property
    def default_message(self) -> str:
        return self.value[2]


class ChatError(Exception):
    """A request that ends in one of the Failure kinds, with a message for the caller."""

    def __init__(self, failure: Failure, detail: str = "", retry_after: int | None = None):
        message = failure.default_message + (f"：{detail}" if detail else "")
        super().__init__(message)
        self.failure = failure
        self.message = message
        self.retry_after = retry_after


SHOWN_CHARS = 60


def shown(value: object) -> str:
    """A caller's value as an error message quotes it: repr, cut short (a body may be 256 KiB deep)."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"<deeply nested {type(value).__name__}>"
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"

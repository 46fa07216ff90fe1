"""The bodies both JSON doors read and write, as pydantic models: one source for the checks and the schemas.

Requests are validated strictly (no "1" for 1, no true for 1, no NaN or Infinity), and a field's
checks are the ones its schema in /api/v1/openapi.json states, since the document is generated from
these classes (bot/api/openapi.py). The order of a request's fields is the order its errors are
reported in. What a schema cannot state across fields (roles alternate, the character budget) is
bot/chat/dialogue.py's. Responses are built from these classes too, so a body matches its schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from bot.chat.dialogue import MAX_MESSAGES
from bot.store.apikeys import KEY_RE

if TYPE_CHECKING:
    from bot.chat.usage import Usage as Counted

MAX_USER_CHARS = 256
MAX_MODEL_CHARS = 256  # echoed in every chunk of a stream: a 250 KB name would make a 63 MB stream
TEMPERATURE = (0.0, 2.0)
TOP_P = (0.0, 1.0)
# A key may come with the whitespace of a paste around it (the door strips it).
KEY_PATTERN = r"^\s*" + KEY_RE.pattern.removeprefix("^").removesuffix("$") + r"\s*$"
MALFORMED_KEY = "expected 'sk-' followed by 48 letters or digits"


class Request(BaseModel):
    # python-re: `\S` means what str.strip() means, so a blank content fails the schema and the code alike.
    model_config = ConfigDict(strict=True, allow_inf_nan=False, regex_engine="python-re", extra="ignore")


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _json_integer(value: Any) -> Any:
    """JSON has one number type: 2.0 is the integer 2 (as JSON Schema says), true is no number.
    (Strict int refuses 2.0; Literal[1] alone takes true, since true == 1 in Python.)"""
    if isinstance(value, bool):
        raise ValueError("not a number")
    return int(value) if isinstance(value, float) and value.is_integer() else value


NonBlank = Annotated[str, Field(min_length=1, pattern=r"\S")]
Count = Annotated[int, Field(ge=1), BeforeValidator(_json_integer)]
OnlyOne = Annotated[Literal[1], BeforeValidator(_json_integer)]


class SpecMessage(Request):
    role: Literal["user", "assistant"]
    content: NonBlank


class SpecChatRequest(Request):
    stream: bool | None = None
    user: Annotated[str, Field(max_length=MAX_USER_CHARS)] | None = None
    api_secret_key: Annotated[str, Field(pattern=KEY_PATTERN, description="`sk-` and 48 letters or digits")]
    messages: Annotated[
        list[SpecMessage],
        Field(
            min_length=1,
            max_length=MAX_MESSAGES,
            description="user, assistant, user, …: odd in number, the last at most 2000 characters",
        ),
    ]


class TextPart(Request):
    type: Literal["text"]
    text: str


class StreamOptions(Request):
    include_usage: bool = False


class OpenAIMessage(Request):
    role: Literal["system", "developer", "user", "assistant"]
    content: NonBlank | Annotated[list[TextPart], Field(min_length=1)]


# openai_format.parse_request's rule across two fields, stated for the document.
_STREAM_OPTIONS_NEED_STREAM = {
    "if": {"properties": {"stream_options": {"type": "object"}}, "required": ["stream_options"]},
    "then": {"properties": {"stream": {"const": True}}, "required": ["stream"]},
}


class OpenAIChatRequest(Request):
    model_config = ConfigDict(json_schema_extra=_STREAM_OPTIONS_NEED_STREAM)

    model: Annotated[str, Field(max_length=MAX_MODEL_CHARS, description="echoed; empty: the configured one")] | None = (
        None
    )
    n: OnlyOne | None = None
    messages: Annotated[
        list[OpenAIMessage],
        Field(
            min_length=1,
            max_length=MAX_MESSAGES + 1,
            description="one optional leading system/developer message, then user, assistant, user, …",
        ),
    ]
    stream: bool | None = None
    max_tokens: Count | None = None
    max_completion_tokens: Count | None = None
    temperature: Annotated[float, Field(ge=TEMPERATURE[0], le=TEMPERATURE[1])] | None = None
    top_p: Annotated[float, Field(ge=TOP_P[0], le=TOP_P[1])] | None = None
    stream_options: StreamOptions | None = Field(None, description="only with stream: true")
    user: Annotated[str, Field(max_length=MAX_USER_CHARS)] | None = None


class Usage(Answer):
    prompt_tokens: Annotated[int, Field(ge=0)]
    completion_tokens: Annotated[int, Field(ge=0)]
    total_tokens: Annotated[int, Field(ge=0)]


def usage_of(counted: Counted) -> Usage:
    """The usage the chat core counted, as an answer carries it."""
    return Usage(**counted.as_dict())


def _is_none(value: object) -> bool:
    return value is None


def absent() -> Any:
    """A field that is left out of the body when it has no value (not sent as null)."""
    return Field(None, exclude_if=_is_none)


# Fields of an answer have no default when every body carries them: the schema marks them required.


class AssistantMessage(Answer):
    role: Literal["assistant"]
    content: str


class SpecChoice(Answer):
    message: AssistantMessage
    finish_reason: str
    index: int


class SpecCompletion(Answer):
    code: Literal[0]
    msg: str
    id: str
    created: int
    choices: list[SpecChoice]
    usage: Usage


class Delta(Answer):
    role: Literal["assistant"] = absent()
    content: str = absent()


class SpecDeltaChoice(Answer):
    delta: Delta
    index: int
    finish_reason: str | None


class SpecChunk(Answer):
    """One event of a spec stream: a piece; the last with usage; or a failure's code, msg and usage."""

    code: int
    msg: str
    id: str
    created: int
    choices: list[SpecDeltaChoice] = absent()
    usage: Usage = absent()


class SpecError(Answer):
    code: Annotated[int, Field(ge=40000, le=59999)]
    msg: str


class OpenAIAnswerMessage(Answer):
    role: Literal["assistant"]
    content: str
    refusal: str | None


class OpenAIChoice(Answer):
    index: int
    message: OpenAIAnswerMessage
    logprobs: None
    finish_reason: str


class OpenAICompletion(Answer):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[OpenAIChoice]
    usage: Usage
    system_fingerprint: str | None


class OpenAIDeltaChoice(Answer):
    index: int
    delta: Delta
    logprobs: None
    finish_reason: str | None


class OpenAIChunk(Answer):
    """A chat.completion.chunk; `usage` is there (null until the last) only with include_usage."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    system_fingerprint: str | None
    choices: list[OpenAIDeltaChoice]
    usage: Usage | None = None


class ErrorDetail(Answer):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(Answer):
    error: ErrorDetail


class Model(Answer):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(Answer):
    object: Literal["list"]
    data: list[Model]

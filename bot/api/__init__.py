"""The JSON doors: the spec's chat API (`/api/v1/...`) and the OpenAI-compatible API (`/v1/...`)."""

from flask import Blueprint

bp = Blueprint("api", __name__)

from bot.api import chat, docs, v1  # noqa: E402,F401  (registers the routes on bp)

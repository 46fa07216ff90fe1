"""The least a wechatpy Flask webhook that asks a model can do: the baseline for bench/webhook_overhead.

Verify the signature, decrypt, one upstream call over a pooled requests.Session, encrypt the answer.
No Redis, no history, no dedupe, no limits. `/wechat-urllib3` is the same with the HTTP client the
service uses (urllib3's pool), to tell the service's own work from its leaner client. `/echo` is the
bare decrypt-and-echo endpoint.
Served with the same gunicorn settings as the service: `gunicorn -c config/gunicorn.conf.py bench.baseline_app:app`.
"""

from __future__ import annotations

import os

import requests
import urllib3
from flask import Flask, request
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.replies import create_reply
from wechatpy.utils import check_signature

TOKEN, AES_KEY, APPID = os.environ["WECHAT_TOKEN"], os.environ["WECHAT_AES_KEY"], os.environ["WECHAT_APPID"]
UPSTREAM = os.environ["OPENAI_BASE_URL"].rstrip("/") + "/chat/completions"

app = Flask(__name__)
crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
session = requests.Session()
session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=1000))
pool = urllib3.PoolManager(maxsize=1000)


def _open():
    args = request.args
    check_signature(TOKEN, args["signature"], args["timestamp"], args["nonce"])
    xml = crypto.decrypt_message(request.data, args["msg_signature"], args["timestamp"], args["nonce"])
    return parse_message(xml)


def _reply(message, text: str) -> str:
    return crypto.encrypt_message(create_reply(text, message).render(), request.args["nonce"])


@app.post("/wechat")
def wechat():
    message = _open()
    body = {"model": "m", "messages": [{"role": "user", "content": message.content}]}
    answer = session.post(UPSTREAM, json=body, timeout=(5, 60)).json()["choices"][0]["message"]["content"]
    return _reply(message, answer)


@app.post("/wechat-urllib3")
def wechat_urllib3():
    message = _open()
    body = {"model": "m", "messages": [{"role": "user", "content": message.content}]}
    answer = pool.request("POST", UPSTREAM, json=body, timeout=urllib3.Timeout(connect=5, read=60)).json()
    return _reply(message, answer["choices"][0]["message"]["content"])


@app.post("/echo")
def echo():
    message = _open()
    return _reply(message, message.content)

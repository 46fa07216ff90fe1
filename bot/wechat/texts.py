"""What followers and admins read on WeChat, in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.store.owed import OwedReply

WELCOME = (
    "欢迎关注小一机器人！\n\n"
    "直接发文字给我，就能和 AI 聊天，我会记住最近的对话。\n"
    "发送「key」获取你的专属 API 密钥，在自己的程序里调用同样的聊天服务。\n"
    "点菜单「重置对话」可以开始新话题。"
)
UNSUPPORTED = "目前只支持文字消息（以及能识别成文字的语音）。请直接用文字提问吧～"
QUESTION_TOO_LONG = "问题太长了（{length} 字），请精简到 2000 字以内再发一次。"
UPSTREAM_FAILED = "抱歉，AI 暂时没能回答，请稍后再试一次。"
UPSTREAM_TIMEOUT = "抱歉，AI 这次思考太久没有回应，请稍后再试一次。"
BUSY = "服务繁忙，请稍后再试。"
DAILY_CAP = "今天的免费聊天额度已经用完啦，明天再来吧～（API 密钥的额度不受影响）"
RATE_LIMITED = "发得太快啦，请稍等一会儿再发。"
BLOCKED = "你的账号已被暂停使用聊天功能，如有疑问请联系管理员。"
QUESTION_REFUSED = "抱歉，这个问题包含本服务不便回答的内容，换个话题吧。"
ANSWER_BLOCKED = "抱歉，这个回答包含不便展示的内容，已被隐藏。换个问法试试吧。"
MODERATION_UNAVAILABLE = "内容审核暂时不可用，请稍后再试。"
RESET_DONE = "好的，已清空我们的对话记录，可以开始新话题了。"

KEY_HOWTO = (
    "你的 API 密钥{status}（请妥善保管，不要泄露给他人）：\n{key}\n\n"
    "剩余额度：{balance} tokens\n"
    "接口：POST {base}/api/v1/chat/completions\n"
    "示例：\ncurl -XPOST {base}/api/v1/chat/completions -d "
    '\'{{"api_secret_key":"{key}","messages":[{{"role":"user","content":"你好"}}]}}\''
)
LOGIN_LINK = "点击链接登录小一机器人控制台（10 分钟内有效，只能使用一次，请勿转发）：\n{link}"
NO_KEY = "你还没有 API 密钥。发送「key」即可获取。"
USAGE = "你的 API 密钥余额：{balance} tokens\n今天 API 已用：{used_today} tokens\n累计已用：{used} tokens"

ADMIN_HELP = (
    "管理命令：\n"
    "/help 本帮助\n"
    "/console 运营控制台的一次性登录链接\n"
    "/reset <openid|key> 清空该用户的对话与待发回复\n"
    "/rotate <openid> 撤销并换发密钥（余额保留）\n"
    "/grant <openid|key> <tokens> 增加额度\n"
    "/stats 今日统计\n"
    "/upstreams 模型上游的状态\n"
    "/menu 发布控制台保存的自定义菜单（没有时发布 config/menu.json）\n"
    "/ban add|del|list 管理违禁词"
)
MENU_SAVED = "控制台保存的菜单"
MENU_DEFAULT = "默认菜单 config/menu.json（控制台还没有保存过菜单）"
MENU_UNREADABLE = "控制台保存的菜单（Redis bot:menu）无法读取，未发布。请在控制台的「菜单」页重新保存。"
STATS = (
    "今日统计（北京时间）：\n"
    "已领取密钥的用户：{key_owners}\n"
    "公众号消息：{messages} 条，{chat_tokens} tokens\n"
    "API 调用：{api_calls} 次，{api_tokens} tokens"
)
STATS_REFUSALS = "\n内容拦截：提问 {question} 次，回答 {answer} 次"

# Answers that take longer than WeChat waits (see bot/wechat/courier.py).
THINKING_MARK = "【正在思考…】"  # how every placeholder for an answer still to come starts
THINKING = THINKING_MARK + "这个问题需要多想一会儿，请稍后发送「继续」获取回答。"
MORE = "\n\n（未完，回复「继续」查看后续）"
WAITING = THINKING_MARK + "回答还没写完，请稍后再发送「继续」。"
QUEUED_NOTE = "\n\n——\n你的新问题已收到，正在思考，稍后发送「继续」获取它的回答。"
NOTHING_OWED = "没有待查看的回答啦，直接提问吧～"
CONTINUE_WORDS = ("继续", "continue", "more")

# Answers shown as the model writes them (bot/wechat/writer.py): each part's note says where it stands.
THINKING_FOR = THINKING_MARK + "已思考 {seconds} 秒，这个问题需要多想一会儿，请稍后发送「继续」获取回答。"
STILL_WRITING = "\n\n（回答还在生成中，回复「继续」查看后续）"
COMPLETE = "\n\n（回答完毕）"
CUT_OFF = "\n\n（回答中断：AI 没能写完，以上是已经写出的部分，可以稍后再问一次。）"
NEXT_ANSWER = "\n\n（还有待查看的回答，回复「继续」查看）"
_NOTES = {"part": "", "complete": COMPLETE, "cut_off": CUT_OFF, "still_writing": STILL_WRITING}

# Follower text commands (bot/wechat/incoming.py): typed instead of the menu.
HELP_WORDS = ("帮助", "help")
HELP = (
    "我是小一机器人，可以这样用：\n"
    "· 直接发文字提问，我会记住最近的对话；\n"
    "· 回答较长时会分段发送，回复「继续」查看后续；\n"
    "· 发送「重置」「清空对话」或「新对话」开始新话题；\n"
    "· 发送「key」获取你的专属 API 密钥。"
)


def thinking_for(seconds: float) -> str:
    """The placeholder when the model has written nothing yet, with how long it has been thinking."""
    return THINKING_FOR.format(seconds=max(1, round(seconds)))


def owed_reply(owed: OwedReply) -> str:
    """How a reply made of what the follower is owed reads: the part handed out (and whether more
    follows), or that the answer is still being written, or that nothing is owed; then, if their new
    question was queued behind it, a note saying so. The store keeps the pieces and words them with
    this whenever the reply is read, so every delivery of a message reads the same."""
    if owed.part is not None:
        text = owed.part + _NOTES[owed.kind]
        if owed.more and owed.kind != "still_writing":  # a part being written says 继续 already
            text += MORE if owed.kind == "part" else NEXT_ANSWER
    else:
        text = WAITING if owed.writing else NOTHING_OWED
    return text + QUEUED_NOTE if owed.queued else text


# /upstreams: each model upstream's state, as the worker that answered the command sees it.
NO_UPSTREAMS = "未配置模型上游（离线模式）。"
UPSTREAMS_HEAD = "模型上游（本工作进程所见）：\n"
_UPSTREAM_STATES = {
    "up": "正常",
    "failing": "连续失败 {failures} 次",
    "down": "暂停使用，{retry_in:g}s 后试探",
    "trial": "试探中",
}


def upstream_line(
    name: str, state: str, failures: int, retry_in: float, priority: int, weight: int, **_: object
) -> str:
    """One upstream on one line: its name, its state in words, its priority and weight."""
    words = _UPSTREAM_STATES.get(state, state).format(failures=failures, retry_in=retry_in)
    return f"{name}：{words}（优先级 {priority}，权重 {weight}）"

"""What the portal says outside its templates: problem pages and the outcomes of API requests."""

from __future__ import annotations

SEND_LOGIN = "请在公众号「小一机器人」里发送「登录」，获取新的登录链接。"

# problem → (title, what to do). Keys: a Standing/sign-in problem, or an HTTP status.
PROBLEMS: dict[str, tuple[str, str]] = {
    "link": ("登录链接无效", "这个登录链接已经用过、已过期（10 分钟内有效）或不正确。" + SEND_LOGIN),
    "too_many": ("尝试次数过多", "这个网络下无效的登录链接太多，请 10 分钟后再试。" + SEND_LOGIN),
    "tampered": ("登录状态无效", "浏览器里的登录信息无法验证，已为你退出。" + SEND_LOGIN),
    "expired": ("登录已过期", "登录 7 天后需要重新登录。" + SEND_LOGIN),
    "ended": ("已退出登录", "你已在所有设备上退出登录。" + SEND_LOGIN),
    "blocked": ("账号已暂停", "你的账号已被暂停使用，如有疑问请联系管理员。"),
    "oauth": ("微信授权未完成", "微信网页授权没有完成或已失效，请重新打开页面。" + SEND_LOGIN),
    "csrf": ("页面已过期", "表单已失效（可能停留太久或在别的页面退出了登录），请刷新页面后再试。"),
    "400": ("请求有误", "请返回上一页重试。"),
    "401": ("请先登录", SEND_LOGIN),
    "403": ("没有权限", "你没有权限访问这个页面。"),
    "404": ("页面不存在", "请检查地址，或回到首页。"),
    "405": ("请求方式不支持", "请回到首页重新操作。"),
    "429": ("操作太频繁", "请稍后再试。"),
    "500": ("服务出错了", "请稍后再试。"),
    "503": ("服务暂不可用", "请稍后再试。"),
}

# An API request's outcome (bot/store/usage.py) → (HTTP status, what it means).
OUTCOMES: dict[str, tuple[int, str]] = {
    "ok": (200, "成功"),
    "too_poor": (402, "余额不足"),
    "quota_exhausted": (402, "余额不足"),
    "key_rate": (429, "超出每分钟次数"),
    "user_rate": (429, "超出 user 每分钟次数"),
    "rate_limited": (429, "请求过于频繁"),
    "blocked": (403, "已被封禁"),
    "upstream_failed": (502, "模型调用失败"),
    "upstream_timeout": (504, "模型响应超时"),
    "service_unavailable": (503, "服务暂不可用"),
    "aborted": (499, "已中断"),
}


def outcome(name: str) -> tuple[int, str]:
    return OUTCOMES.get(name, (500, name))

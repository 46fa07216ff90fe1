"""`/ban add 词`, `/ban del 词`, `/ban list [page]`: an admin's run-time word list on WeChat.

Only openids in BOT_ADMIN_OPENIDS reach this (bot/wechat/admin.py); anyone else typing `/ban …` is
chatting, and their text is screened like any question. The word is never written to the log.
"""

from __future__ import annotations

from bot.safety.runtime import MAX_RUNTIME_WORDS, WordStore
from bot.safety.wordfile import MAX_WORD_CHARS, word_problem
from bot.wechat.protocol import PASSIVE_LIMIT_BYTES

PAGE = 20  # words a page at most, and fewer if they would not fit in one reply
PAGE_BYTES = PASSIVE_LIMIT_BYTES - 100  # WeChat cuts a longer reply; the rest is for the page's heading
USAGE = (
    "用法：\n/ban add <词> 添加违禁词\n/ban del <词> 删除（运行时添加的）违禁词\n"
    "/ban list [页码] 查看运行时添加的违禁词\n"
    f"词为 1 到 {MAX_WORD_CHARS} 个字符，须含文字或数字；空格和标点在匹配时忽略。"
)


def ban_action(args: list[str]) -> str:
    """What of `/ban <args>` may be logged: its action, never a word (`/ban 词` leaves the action out)."""
    action = args[0].lower() if args else ""
    return action if action in ("add", "del", "remove", "list") else "(no action: usage)"


def run_ban(store: WordStore, args: list[str]) -> str:
    """The reply to `/ban <args>`; a word may contain spaces (they are ignored when matching)."""
    action, word = (args[0].lower() if args else ""), " ".join(args[1:])
    if action == "add":
        return _add(store, word)
    if action in ("del", "remove"):
        if word_problem(word) is not None:
            return USAGE
        if store.remove(word):
            return "已删除，5 秒内在所有实例生效。"
        return "运行时词表中没有这个词（配置文件中的词需修改文件）。"
    if action == "list":
        return _page(store, word)
    return USAGE


def _add(store: WordStore, word: str) -> str:
    if word_problem(word) is not None:
        return USAGE
    if store.count() >= MAX_RUNTIME_WORDS:
        return f"运行时词表已有 {MAX_RUNTIME_WORDS} 个词，请先删除一些，或改用配置文件。"
    added = store.add([word])
    return "已添加，5 秒内在所有实例生效。" if added else "这个词已在词表中。"


def _page(store: WordStore, number: str) -> str:
    words = store.snapshot()[1]
    pages = _pages(words) or [[]]
    if number and not (number.isascii() and number.isdigit() and len(number) < 10 and 1 <= int(number) <= len(pages)):
        return f"页码应为 1 到 {len(pages)}。"
    page = int(number or 1)
    head = f"运行时违禁词共 {len(words)} 个，第 {page}/{len(pages)} 页："
    return "\n".join([head, *pages[page - 1]]) if words else f"运行时违禁词共 0 个。\n\n{USAGE}"


def _pages(words: list[str]) -> list[list[str]]:
    """The sorted words in pages of at most PAGE words and PAGE_BYTES bytes (64 characters take 256
    at most): the same list always pages the same way, so page 2 is page 2 from one /ban list to the next."""
    pages: list[list[str]] = []
    size = 0
    for word in words:
        cost = len(word.encode()) + 1  # and its line break
        if not pages or len(pages[-1]) == PAGE or size + cost > PAGE_BYTES:
            pages.append([])
            size = 0
        pages[-1].append(word)
        size += cost
    return pages

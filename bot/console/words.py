"""The banned-word list on /admin/content: search, add, remove and import the run-time words.

The same store as /ban and `flask words` (bot/safety/runtime.py): every worker enforces a change
within ~1 s. Words travel only in POST bodies (never a URL, so never an access log), each change is
confirmed, and the audit log records the action and how many words, never a word, as /ban does.
Each word shows its hits over the last 30 days (the console's flush writes them per day,
bot/console/traffic.py), and the most hit words are listed, the word files' too.
"""

from __future__ import annotations

from flask import Response, redirect, render_template, request, url_for

from bot.console.access import audit, bp, tell_done, told_done
from bot.console.traffic import days_back, read_word_hits
from bot.safety.runtime import MAX_RUNTIME_WORDS
from bot.safety.wordfile import WordFileError, read_words, word_problem
from bot.services import services

SHOWN = 200  # words listed at most; a search narrows the rest
TOP = 20  # the most hit words listed
HIT_DAYS = 30


def _store():
    return services().guard.store


def page(**extra: object) -> str:
    find = request.form.get("find", "").strip()  # posted only: a word searched for never sits in a URL
    words = _store().snapshot()[1]
    found = [w for w in words if find.lower() in w.lower()] if find else words
    hits = read_word_hits(services().redis, days_back(HIT_DAYS))
    top = sorted(hits.items(), key=lambda item: (-item[1], item[0]))[:TOP]
    return render_template("console/words.html", words=found[:SHOWN], total=len(words), matched=len(found),
                           find=find, today=_store().today(), hits=hits, top=top, **extra)  # fmt: skip


@bp.route("/content/words", methods=["GET", "POST"])
def words() -> str:
    """The list (a search is posted, so the word searched for stays out of URLs and logs)."""
    return page(done=told_done() or "")


@bp.post("/content/words/confirm")
def words_confirm() -> str:
    """What an add, a removal or an import would do, to confirm; nothing changes yet."""
    action, raw = request.form.get("action", ""), request.form.get("words", "")
    try:
        chosen = read_words(raw.encode(), "导入的文本") if action == "import" else [raw.strip()]
    except WordFileError as error:
        return page(problem=f"导入的文本有误：{error}")
    if action not in ("add", "remove", "import") or not chosen or any(word_problem(w) for w in chosen):
        return page(problem="词不能为空、不能只有标点，且不能过长")
    if action != "remove" and _store().count() + len(chosen) > MAX_RUNTIME_WORDS:
        return page(problem=f"运行时词表最多 {MAX_RUNTIME_WORDS} 个词")
    return page(confirm=action, chosen=chosen, raw=raw)


@bp.post("/content/words/apply")
def words_apply() -> Response | str:
    """Apply a confirmed change, audit it (the count, not the words), and show the list."""
    action, raw = request.form.get("action", ""), request.form.get("words", "")
    try:
        chosen = read_words(raw.encode(), "导入的文本") if action == "import" else [raw.strip()]
    except WordFileError:
        chosen = []
    if action not in ("add", "remove", "import") or not chosen or any(word_problem(w) for w in chosen):
        return page(problem="词不能为空、不能只有标点，且不能过长"), 400  # type: ignore[return-value]
    changed = int(_store().remove(chosen[0])) if action == "remove" else _store().add(chosen)
    audit(f"ban {action}", "", f"{len(chosen)} word(s), {changed} changed")
    tell_done(action)
    return redirect(url_for("console.words"), 303)

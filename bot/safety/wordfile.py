"""The operator's word files (BOT_SENSITIVE_WORDS_FILES) and the rules every word obeys.

A file is UTF-8, one word or phrase a line; a line starting with `#` is a comment, blank lines are
ignored. A bad file stops start-up with one line naming the file and the line, so a typo never
silently drops part of the list.
"""

from __future__ import annotations

from pathlib import Path

from bot.safety.text import normalise

MAX_WORD_CHARS = 64
DEFAULT_FILE = Path(__file__).resolve().parent.parent.parent / "config" / "sensitive_words.txt"


class WordFileError(ValueError):
    """A word file that cannot be used: the message names the file and line."""


def word_problem(word: str) -> str | None:
    """Why `word` cannot be a banned word (None: it can): empty, too long, or only separators."""
    if not word.strip():
        return "is empty"
    if len(word) > MAX_WORD_CHARS:
        return f"has {len(word)} characters, at most {MAX_WORD_CHARS}"
    if not normalise(word):
        return "has no letter or digit (punctuation and spaces are ignored when matching)"
    return None


def read_words(data: bytes, name: str) -> list[str]:
    """The words of one file's bytes; WordFileError names `name`:line for the first bad line."""
    words = []
    data = data.removeprefix(b"\xef\xbb\xbf")  # the BOM Windows Notepad writes: not part of the first line
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as error:
            raise WordFileError(f"{name}:{number}: not UTF-8 (byte {error.start + 1} of the line)") from None
        if not line or line.startswith("#"):
            continue
        problem = word_problem(line)
        if problem is not None:
            raise WordFileError(f"{name}:{number}: the word {problem}")
        words.append(line)
    return words


def load_files(paths: tuple[str, ...]) -> list[str]:
    """Every word of every file, in order; WordFileError for a missing or bad file."""
    words: list[str] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise WordFileError(f"{path}: cannot be read ({error.strerror or type(error).__name__})") from None
        words += read_words(data, path)
    return words

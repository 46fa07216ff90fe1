"""`flask --app wsgi words add|remove|list|import FILE|export`: the run-time banned words.

The words of BOT_SENSITIVE_WORDS_FILES are the files' own; these commands manage the list kept in
Redis, which every worker picks up within seconds. `export` writes it in the files' format, so it
can be kept in a file or imported elsewhere.
"""

from __future__ import annotations

import getpass
from pathlib import Path

import click
from flask.cli import AppGroup

from bot.safety.runtime import MAX_RUNTIME_WORDS, WordStore
from bot.safety.wordfile import WordFileError, read_words, word_problem
from bot.services import services
from bot.store.audit import AuditLog

words_cli = AppGroup("words", help="Ban words at run time (every worker within seconds), list or lift them.")


def _store() -> WordStore:
    return services().guard.store


def _checked(word: str) -> str:
    problem = word_problem(word)
    if problem is not None:
        raise click.BadParameter(f"the word {problem}", param_hint="WORD")
    return word


def _audit(action: str, words: list[str], changed: int) -> None:
    """Write the change to the audit log before it is reported: how many words, never a word (as /ban)."""
    detail = f"{len(words)} word(s), {changed} changed"
    AuditLog(services().redis).record(f"cli:{getpass.getuser()}", "cli", f"ban {action}", "", detail)


def _add(store: WordStore, words: list[str]) -> int:
    if store.count() + len(words) > MAX_RUNTIME_WORDS:
        raise click.ClickException(f"the run-time list holds at most {MAX_RUNTIME_WORDS} words: use a file")
    return store.add(words)


@words_cli.command("add")
@click.argument("word")
def add_word(word: str) -> None:
    """Ban WORD (a phrase may hold spaces: quote it)."""
    added = _add(_store(), [_checked(word)])
    _audit("add", [word], added)
    click.echo("banned" if added else "already banned")


@words_cli.command("remove")
@click.argument("word")
def remove_word(word: str) -> None:
    """Lift the run-time ban of WORD."""
    if not _store().remove(_checked(word)):
        raise click.ClickException("not in the run-time list (a word of a file is lifted by editing the file)")
    _audit("remove", [word], 1)
    click.echo("removed")


@words_cli.command("list")
def list_words() -> None:
    """The run-time words, as they are matched (lower case, without spaces or punctuation)."""
    words = _store().snapshot()[1]
    for word in words:
        click.echo(word)
    click.echo(f"{len(words)} run-time words", err=True)


@words_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_words(path: str) -> None:
    """Ban every word of a file in the word files' format (nothing is banned if a line is bad)."""
    try:
        words = read_words(Path(path).read_bytes(), path)
    except WordFileError as error:
        raise click.ClickException(str(error)) from None
    added = _add(_store(), words) if words else 0
    _audit("import", words, added)
    click.echo(f"{added} banned, {len(words) - added} already banned")


@words_cli.command("export")
def export_words() -> None:
    """The run-time words in the word files' format, on standard output."""
    click.echo("# run-time banned words (flask words export)")
    for word in _store().snapshot()[1]:
        click.echo(word)

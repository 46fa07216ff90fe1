"""Operator commands: `flask --app wsgi keys …` (the README's `make cli` sets up the environment)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from bot.extensions import services
from bot.store.keyspace import valid_openid

keys_cli = AppGroup("keys", help="Issue, inspect, revoke and top up API keys.")


def _openid(value: str) -> str:
    if not valid_openid(value):
        raise click.BadParameter(f"not an openid: {value!r}")
    return value


def _resolve(target: str) -> str:
    """The fingerprint of an openid's key or of a key given in full."""
    store = services().keys
    fingerprint = store.fingerprint(target) if target.startswith("sk-") else store.fingerprint_of(_openid(target))
    if not fingerprint or store.info(fingerprint) is None:
        raise click.ClickException(
            f"no active key for {target[:6]}…" if target.startswith("sk-") else f"no key for {target}"
        )
    return fingerprint


@keys_cli.command("issue")
@click.argument("openid")
def issue_key(openid: str) -> None:
    """Print OPENID's API key, issuing it if the follower has none yet."""
    key, created = services().keys.issue(_openid(openid))
    click.echo(key)
    click.echo("issued a new key" if created else "this follower already had this key", err=True)


@keys_cli.command("show")
@click.argument("target")
def show_key(target: str) -> None:
    """Owner, balance and use of a key (TARGET: an openid or the key itself)."""
    info = services().keys.info(_resolve(target))
    assert info is not None
    click.echo(
        f"owner={info.owner} key={info.fingerprint[:10]} balance={info.balance} "
        f"reserved={info.reserved} used={info.used} used_today={info.used_today}"
    )


@keys_cli.command("revoke")
@click.argument("openid")
def revoke_key(openid: str) -> None:
    """Revoke OPENID's key; it stops working on its next request."""
    if not services().keys.revoke(_openid(openid)):
        raise click.ClickException(f"no key for {openid}")
    click.echo(f"revoked the key of {openid}")


@keys_cli.command("rotate")
@click.argument("openid")
def rotate_key(openid: str) -> None:
    """Revoke OPENID's key and print a new one that keeps the balance."""
    click.echo(services().keys.rotate(_openid(openid)))


@keys_cli.command("grant")
@click.argument("target")
@click.argument("tokens", type=click.IntRange(1, 10**12))
def grant_tokens(target: str, tokens: int) -> None:
    """Add TOKENS to a key's balance (TARGET: an openid or the key itself)."""
    balance = services().keys.grant(_resolve(target), tokens)
    click.echo(f"balance is now {balance}")


def register(app: Flask) -> None:
    app.cli.add_command(keys_cli)

"""Operator commands: `flask --app wsgi keys|block|unblock …` (`make cli` sets up the environment)."""

from __future__ import annotations

import getpass
import os
import secrets

import click
import requests
from flask import Flask
from flask.cli import AppGroup

from bot.ids import log_id, valid_openid
from bot.services import services
from bot.store.audit import AuditLog
from bot.wechat import simulate

keys_cli = AppGroup("keys", help="Issue, inspect, revoke and top up API keys.")
block_cli = AppGroup("block", help="Block a follower (chat and API key) or a `user` value of the API.")
unblock_cli = AppGroup("unblock", help="Lift a block.")


def _openid(value: str) -> str:
    if not valid_openid(value):
        raise click.BadParameter(f"not an openid: {value!r}")
    return value


def _audit(action: str, target: str, detail: str = "") -> None:
    """Write the command to the audit log before it reports success (a key given in full is not kept)."""
    AuditLog(services().redis).record(f"cli:{getpass.getuser()}", "cli", action, target, detail)


def _resolve(target: str) -> str:
    """The fingerprint of an openid's key or of a key given in full."""
    store = services().keys
    fingerprint = store.lookup(target) if target.startswith("sk-") else store.fingerprint_of(_openid(target))
    if not fingerprint or store.info(fingerprint) is None:
        raise click.ClickException(
            f"no active key for {target[:6]}…" if target.startswith("sk-") else f"no key for {target}"
        )
    return fingerprint


@keys_cli.command("issue")
@click.argument("openid")
def issue_key(openid: str) -> None:
    """Print OPENID's API key, issuing it if the follower has none yet (continuing their balance)."""
    key, created = services().keys.issue(_openid(openid))
    if created:
        _audit("issue", openid)
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
        f"reserved={info.reserved} used={info.used} used_today={info.used_today}" + (" BLOCKED" if info.blocked else "")
    )


@keys_cli.command("revoke")
@click.argument("openid")
def revoke_key(openid: str) -> None:
    """Revoke OPENID's key; it stops working on its next request. The balance waits for their next key."""
    if not services().keys.revoke(_openid(openid)):
        raise click.ClickException(f"no key for {openid}")
    _audit("revoke", openid)
    click.echo(f"revoked the key of {openid}")


@keys_cli.command("rotate")
@click.argument("openid")
def rotate_key(openid: str) -> None:
    """Revoke OPENID's key and print a new one that keeps the balance."""
    key = services().keys.rotate(_openid(openid))
    _audit("rotate", openid)
    click.echo(key)


@keys_cli.command("grant")
@click.argument("target")
@click.argument("tokens", type=click.IntRange(1, 10**12))
def grant_tokens(target: str, tokens: int) -> None:
    """Add TOKENS to a key's balance (TARGET: an openid or the key itself)."""
    fingerprint = _resolve(target)
    balance = services().keys.grant(fingerprint, tokens)
    _audit("grant", log_id(fingerprint) if target.startswith("sk-") else target, f"+{tokens} → {balance}")
    click.echo(f"balance is now {balance}")


@keys_cli.command("reseal")
def reseal_keys() -> None:
    """Move every key to the current BOT_SECRET (after a rotation, with BOT_SECRET_PREVIOUS set)."""
    if services().keys.vault.previous is None:
        click.echo(
            "BOT_SECRET_PREVIOUS is not set: keys sealed under another secret will count as unreadable", err=True
        )
    report = services().keys.reseal()
    summary = f"moved {report.moved}, already current {report.current}, unreadable {report.unreadable}"
    _audit("keys reseal", "", summary)
    click.echo(summary)
    if report.unreadable:
        raise click.ClickException(
            "some keys are sealed under neither secret: `keys rotate OPENID` gives them new ones"
        )


@block_cli.command("user")
@click.argument("value")
def block_user(value: str) -> None:
    """Refuse API requests whose `user` field is VALUE, on every key, from the next request on."""
    already = not services().blocks.block_user(value)
    _audit("block user", value)
    click.echo(f"user {value!r} {'was already' if already else 'is now'} blocked")


@block_cli.command("openid")
@click.argument("openid")
def block_openid(openid: str) -> None:
    """Refuse OPENID's chat messages and API key from their next request on."""
    already = not services().blocks.block_openid(_openid(openid))
    _audit("block", openid)
    click.echo(f"{openid} {'was already' if already else 'is now'} blocked")


@unblock_cli.command("user")
@click.argument("value")
def unblock_user(value: str) -> None:
    """Lift the block of a `user` value."""
    if not services().blocks.unblock_user(value):
        raise click.ClickException(f"user {value!r} was not blocked")
    _audit("unblock user", value)
    click.echo(f"user {value!r} is no longer blocked")


@unblock_cli.command("openid")
@click.argument("openid")
def unblock_openid(openid: str) -> None:
    """Lift the block of a follower."""
    if not services().blocks.unblock_openid(_openid(openid)):
        raise click.ClickException(f"{openid} was not blocked")
    _audit("unblock", openid)
    click.echo(f"{openid} is no longer blocked")


wechat_cli = AppGroup("wechat", help="Talk to /wechat as WeChat's servers would.")


@wechat_cli.command("say")
@click.argument("text")
@click.option("--openid", default="oDevFollower", show_default=True, help="the follower who writes")
@click.option("--click", "click_key", is_flag=True, help="send TEXT as a menu click's EventKey instead")
@click.option("--url", default=None, help="the service's base URL [default: http://127.0.0.1:$PORT]")
@click.option(
    "--mode", type=click.Choice(simulate.MODES), default=None, help="[default: safe unless the mode is plain]"
)
def say(text: str, openid: str, click_key: bool, url: str | None, mode: str | None) -> None:
    """Send TEXT to the running service as a signed (and encrypted) WeChat message; print the reply."""
    settings = services().settings
    if not settings.wechat_token:
        raise click.ClickException("WECHAT_TOKEN is not set")
    account = simulate.Account(settings.wechat_token, settings.wechat_aes_key, settings.wechat_appid)
    mode = mode or ("plain" if settings.wechat_message_mode == "plain" else "safe")
    fields = {"Event": "CLICK", "EventKey": text} if click_key else {"Content": text, "MsgId": secrets.randbits(62)}
    xml = simulate.message_xml(account, _openid(openid), "event" if click_key else "text", **fields)
    params, body = simulate.sign(account, xml, mode)
    base = url or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
    response = requests.post(f"{base.rstrip('/')}/wechat", params=params, data=body, timeout=30)
    if response.status_code != 200:
        raise click.ClickException(f"/wechat answered HTTP {response.status_code}: {response.text[:200]}")
    reply = simulate.open_reply(account, response.content, encrypted=mode != "plain")
    click.echo("(no reply)" if reply is None else reply.get("Content", reply))


def register(app: Flask) -> None:
    from bot.safety.cli import words_cli

    for group in (keys_cli, wechat_cli, block_cli, unblock_cli, words_cli):
        app.cli.add_command(group)

"""`flask --app wsgi console link OPENID`: a one-time sign-in link, for operators and bootstrapping."""

from __future__ import annotations

import getpass
import os

import click
from flask import current_app
from flask.cli import AppGroup

from bot.ids import valid_openid
from bot.services import services
from bot.store.audit import AuditLog

console_cli = AppGroup("console", help="The web portal: sign-in links.")


@console_cli.command("link")
@click.argument("openid")
@click.option(
    "--base", default=None, help="the portal's public URL [default: BOT_PUBLIC_URL, else http://127.0.0.1:$PORT]"
)
def link(openid: str, base: str | None) -> None:
    """Print a sign-in link for OPENID: valid 10 minutes, usable once. It signs in as that follower."""
    if not valid_openid(openid):
        raise click.BadParameter(f"not an openid: {openid!r}")
    base = base or services().settings.public_url or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}"
    token = current_app.extensions["signins"].issue_link(openid)
    AuditLog(services().redis).record(f"cli:{getpass.getuser()}", "cli", "console link", openid)
    click.echo(f"{base.rstrip('/')}/login/{token}")
    click.echo("valid for 10 minutes, once; anyone holding it signs in as this follower", err=True)

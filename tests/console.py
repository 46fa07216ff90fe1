"""What the console's tests share: an admin signed in from the /console link, and the audit log."""

from __future__ import annotations

from bot.services import services
from bot.store.audit import AuditLog
from tests.conftest import ACCOUNT, ADMIN
from tests.follower import Follower, flask_post
from tests.portal import link_path


def admin_client(app, client):
    """A browser signed in as the admin from the link /console on WeChat gives: it lands on /admin."""
    path = link_path(Follower(flask_post(client), ACCOUNT, ADMIN).say("/console"))
    browser = app.test_client()
    landed = browser.get(path)
    assert landed.status_code == 303 and landed.headers["Location"].endswith("/admin")
    return browser


def entries(app) -> list:
    with app.app_context():
        return AuditLog(services().redis).recent()

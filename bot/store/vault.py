"""What BOT_SECRET protects: the look-up fingerprint of an API key and its encrypted copy.

A copy of the Redis data holds neither usable key: the index is an HMAC of the key, and the copy a
follower can ask for again is Fernet-encrypted. Both sub-keys are derived from BOT_SECRET with
distinct labels, so neither use weakens the other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken


def _derive(secret: str, label: str) -> bytes:
    return hmac.new(secret.encode(), label.encode(), hashlib.sha256).digest()


class Vault:
    def __init__(self, secret: str, previous: str = ""):
        self._index_key = _derive(secret, "bot/api-key-index/v1")
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, "bot/api-key-vault/v1")))
        # BOT_SECRET_PREVIOUS during a rotation: keys still indexed and sealed under it are found
        # and moved to the current secret (bot/store/rekey.py).
        self.previous = Vault(previous) if previous else None

    def fingerprint(self, api_key: str) -> str:
        """Stable HMAC-SHA256 of a key: its index in Redis (hex, 64 characters)."""
        return hmac.new(self._index_key, api_key.encode(), hashlib.sha256).hexdigest()

    def seal(self, api_key: str) -> str:
        return self._fernet.encrypt(api_key.encode()).decode()

    def open(self, token: str) -> str | None:
        """The key sealed in `token` under this secret or the previous one; None under any other."""
        key = self.open_current(token)
        if key is None and self.previous is not None:
            key = self.previous.open_current(token)
        return key

    def open_current(self, token: str) -> str | None:
        """The key sealed in `token` under this secret only."""
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            return None

"""The console's session: a signed cookie naming the access key that logged in, and its CSRF token.

The cookie is `<access key id>.<expiry>.<nonce>.<HMAC-SHA256>` under a key kept in the home (mode 0600),
so sessions survive a restart and a tampered or expired cookie is simply not a session. It never carries the
secret: the secret is checked once, at login, against what SigV4 checks (`Platform.lookup_secret`). The CSRF
token is an HMAC of the whole cookie under a separate label, so it is bound to one session and needs no
server state.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

COOKIE_NAME = "sagelab_console"
KEY_FILE = "console-session.key"


@dataclasses.dataclass(frozen=True)
class Session:
    access_key_id: str
    expires: int
    cookie: str


class SessionSigner:
    def __init__(self, home: Path, lifetime_seconds: int):
        self.key_path = home / KEY_FILE
        self.lifetime_seconds = lifetime_seconds
        self._key: bytes | None = None

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = self._read_or_create_key()
        return self._key

    def _read_or_create_key(self) -> bytes:
        if not self.key_path.exists():
            # O_EXCL: two servers on one home never overwrite each other's key.
            try:
                fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_hex(32))
        return bytes.fromhex(self.key_path.read_text().strip())

    def issue(self, access_key_id: str) -> Session:
        expires = int(time.time()) + self.lifetime_seconds
        payload = f"{access_key_id}.{expires}.{secrets.token_urlsafe(12)}"
        cookie = f"{payload}.{self._mac('session', payload)}"
        return Session(access_key_id, expires, cookie)

    def verify(self, cookie: str | None) -> Session | None:
        if not cookie or cookie.count(".") != 3:
            return None
        payload, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(mac, self._mac("session", payload)):
            return None
        access_key_id, expires, _ = payload.split(".")
        if not expires.isdigit() or int(expires) < time.time():
            return None
        return Session(access_key_id, int(expires), cookie)

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf", session.cookie)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(token, self.csrf_token(session))

    def _mac(self, label: str, text: str) -> str:
        digest = hmac.new(self.key, f"{label}:{text}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

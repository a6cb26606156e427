"""STS sessions: temporary credentials (an `ASIA...` key, its secret and a session token) and what they act as.

A session is a row of the resource store (kind `sts-session`, named by its access key id), so temporary
credentials survive a restart until they expire. Its token is random; a request must present the token
of its key, or it is refused as an invalid token. Expired sessions are kept, so that their requests are
told the token expired rather than that it is unknown (`purge_expired` removes them a day later).
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import secrets
import string
import time
from typing import Any

from sagelab.account import Account
from sagelab.iam.directory import new_secret
from sagelab.storage.resources import ResourceStore

SESSION = "sts-session"
MIN_DURATION = 900
#: GetSessionToken's default and maximum (AssumeRole's maximum is the role's MaxSessionDuration).
SESSION_TOKEN_DEFAULT, SESSION_TOKEN_MAX = 43200, 129600
ASSUME_ROLE_DEFAULT = 3600
_KEEP_EXPIRED_SECONDS = 86400
_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclasses.dataclass(frozen=True)
class Session:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: float
    #: The assumed role's ARN, or "" for a GetSessionToken session (which acts as its user).
    role_arn: str = ""
    role_id: str = ""
    session_name: str = ""
    #: The user a GetSessionToken session belongs to.
    user_name: str = ""

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expiration

    def token_matches(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.session_token.encode())

    @property
    def credentials(self) -> dict[str, Any]:
        """STS's Credentials structure."""
        return {"AccessKeyId": self.access_key_id, "SecretAccessKey": self.secret_access_key,
                "SessionToken": self.session_token, "Expiration": self.expiration}


def _token() -> str:
    # Long and opaque like AWS's: nothing in it can be read or forged, only looked up.
    return base64.b64encode(b"sagelab-session:" + secrets.token_bytes(96)).decode()


class SessionStore:
    def __init__(self, *, resources: ResourceStore, account: Account):
        self.resources = resources
        self.account = account

    def issue(self, duration: int, *, role_arn: str = "", role_id: str = "", session_name: str = "",
              user_name: str = "") -> Session:
        akid = "ASIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
        session = Session(akid, new_secret(), _token(), time.time() + duration, role_arn, role_id, session_name,
                          user_name)
        self.resources.insert(SESSION, akid, f"arn:aws:sts::{self.account.id}:session/{akid}", "",
                              dataclasses.asdict(session))
        return session

    def get(self, access_key_id: str) -> Session | None:
        if not access_key_id.startswith("ASIA"):
            return None
        found = self.resources.get(SESSION, access_key_id)
        return Session(**found.doc) if found is not None else None

    def purge_expired(self) -> None:
        cutoff = time.time() - _KEEP_EXPIRED_SECONDS
        for row in self.resources.list(SESSION):
            if row.doc["expiration"] < cutoff:
                self.resources.delete(SESSION, row.name)

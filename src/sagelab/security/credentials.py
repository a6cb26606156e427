"""Root credentials and the account id of a sagelab home.

The first start writes `<home>/credentials` in the AWS shared-credentials format (profile `default`,
mode 0600), so `AWS_SHARED_CREDENTIALS_FILE=<home>/credentials` is all a client needs. The settings
`root_access_key_id` / `root_secret_access_key` (e.g. from SAGELAB_ROOT_*) take precedence.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import secrets
import string
from pathlib import Path

_KEY_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


@dataclasses.dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str


def _generate() -> Credentials:
    akid = "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    return Credentials(akid, secret)


def credentials_path(home: Path) -> Path:
    return home / "credentials"


def read_credentials_file(path: Path, profile: str = "default") -> Credentials | None:
    if not path.exists():
        return None
    parser = configparser.ConfigParser()
    parser.read(path)
    if not parser.has_section(profile):
        return None
    section = parser[profile]
    return Credentials(section["aws_access_key_id"], section["aws_secret_access_key"])


def write_credentials_file(path: Path, creds: Credentials) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("[default]\n"
            f"aws_access_key_id = {creds.access_key_id}\n"
            f"aws_secret_access_key = {creds.secret_access_key}\n")
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    os.chmod(path, 0o600)


def ensure_root_credentials(home: Path, access_key_id: str = "", secret_access_key: str = "") -> Credentials:
    """The root credentials: from settings if given, else from the home's file, else newly generated."""
    path = credentials_path(home)
    if access_key_id and secret_access_key:
        creds = Credentials(access_key_id, secret_access_key)
        if read_credentials_file(path) != creds:
            write_credentials_file(path, creds)
        return creds
    existing = read_credentials_file(path)
    if existing is not None:
        return existing
    creds = _generate()
    write_credentials_file(path, creds)
    return creds


def new_account_id() -> str:
    return "".join(secrets.choice(string.digits[1:]) for _ in range(1)) + "".join(
        secrets.choice(string.digits) for _ in range(11))

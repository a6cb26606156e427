"""The home's master key: the one secret that seals every KMS key's material at rest.

It lives in `<home>/kms/master.key` (32 random bytes, mode 0600, created on first use); the metadata store
only ever holds key material sealed under it (AES-256-GCM, the key id as associated data, so sealed
material cannot be moved to another key's row).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12


class MasterKey:
    def __init__(self, folder: Path):
        self.path = Path(folder) / "master.key"
        self._aead: AESGCM | None = None

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            self._aead = AESGCM(self._load_or_create())
        return self._aead

    def _load_or_create(self) -> bytes:
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self.path.parent, 0o700)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(KEY_BYTES))
                f.flush()
                os.fsync(f.fileno())
            try:  # two processes racing keep the first key written
                os.link(tmp, self.path)
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        key = self.path.read_bytes()
        if len(key) != KEY_BYTES:
            raise RuntimeError(f"{self.path} does not hold a {KEY_BYTES}-byte master key.")
        return key

    def seal(self, material: bytes, owner: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._cipher().encrypt(nonce, material, owner.encode())

    def unseal(self, sealed: bytes, owner: str) -> bytes:
        try:
            return self._cipher().decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], owner.encode())
        except InvalidTag:
            raise RuntimeError(f"key material of {owner} does not open with {self.path}: the master key "
                               "was replaced or the store was tampered with.") from None

"""The key that signs digest files: RSA 2048 in `<home>/cloudtrail/digest-key.pem` (mode 0600).

Digests are signed SHA256withRSA (PKCS #1 v1.5) over CloudTrail's data-to-sign string; the public key is
published by ListPublicKeys as PKCS #1 DER, and named in each digest by its fingerprint (MD5 of that DER).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class DigestKey:
    def __init__(self, folder: Path):
        self.path = Path(folder) / "digest-key.pem"
        self._key: rsa.RSAPrivateKey | None = None

    def _private(self) -> rsa.RSAPrivateKey:
        if self._key is None:
            if not self.path.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
                tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(pem)
                os.replace(tmp, self.path)
            loaded = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
            assert isinstance(loaded, rsa.RSAPrivateKey), f"{self.path} must hold an RSA key"
            self._key = loaded
        return self._key

    @property
    def public_der(self) -> bytes:
        """The public key as PKCS #1 DER, the form CloudTrail publishes."""
        return self._private().public_key().public_bytes(serialization.Encoding.DER,
                                                         serialization.PublicFormat.PKCS1)

    @property
    def fingerprint(self) -> str:
        return hashlib.md5(self.public_der, usedforsecurity=False).hexdigest()

    @property
    def created(self) -> float:
        self._private()
        return self.path.stat().st_mtime

    def sign(self, data: bytes) -> str:
        return self._private().sign(data, padding.PKCS1v15(), hashes.SHA256()).hex()


def data_to_sign(digest: dict, inflated: bytes) -> bytes:
    """CloudTrail's string to sign: end time, the digest's S3 path, the SHA-256 of its uncompressed content,
    and the previous digest's signature (`null` for the first of a chain)."""
    previous = digest.get("previousDigestSignature") or "null"
    return (f"{digest['digestEndTime']}\n{digest['digestS3Bucket']}/{digest['digestS3Object']}\n"
            f"{hashlib.sha256(inflated).hexdigest()}\n{previous}").encode()


def verify(public_der: bytes, signature_hex: str, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature

    key = serialization.load_der_public_key(public_der)
    assert isinstance(key, rsa.RSAPublicKey)
    try:
        key.verify(bytes.fromhex(signature_hex), data, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True

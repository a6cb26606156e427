"""KMS ciphertext blobs: self-describing, like AWS's, so Decrypt needs no KeyId.

    b"SLK1" | key id (36 ASCII bytes, a UUID) | material version (2 bytes) | nonce (12) | AES-GCM output

The header and the encryption context (canonical JSON, keys sorted) are the associated data: a changed
byte anywhere, or another context, fails authentication.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import struct
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sagelab.kms.errors import InvalidCiphertext

MAGIC = b"SLK1"
KEY_ID_BYTES = 36
NONCE_BYTES = 12
_HEADER = len(MAGIC) + KEY_ID_BYTES + 2
_INVALID = "The ciphertext is invalid: it is not a ciphertext blob, or it was changed, or the encryption " \
           "context differs from the one it was encrypted with."


@dataclasses.dataclass(frozen=True)
class Blob:
    key_id: str
    version: int
    header: bytes
    body: bytes


def _context_bytes(context: Mapping[str, str] | None) -> bytes:
    return json.dumps(dict(context or {}), sort_keys=True, separators=(",", ":")).encode()


def parse(blob: bytes) -> Blob:
    if len(blob) < _HEADER + NONCE_BYTES + 16 or not blob.startswith(MAGIC):
        raise InvalidCiphertext(_INVALID)
    try:
        key_id = blob[len(MAGIC):len(MAGIC) + KEY_ID_BYTES].decode("ascii")
    except UnicodeDecodeError:
        raise InvalidCiphertext(_INVALID) from None
    (version,) = struct.unpack(">H", blob[_HEADER - 2:_HEADER])
    return Blob(key_id, version, blob[:_HEADER], blob[_HEADER:])


def seal(material: bytes, key_id: str, version: int, plaintext: bytes,
         context: Mapping[str, str] | None) -> bytes:
    header = MAGIC + key_id.encode("ascii") + struct.pack(">H", version)
    nonce = secrets.token_bytes(NONCE_BYTES)
    return header + nonce + AESGCM(material).encrypt(nonce, plaintext, header + _context_bytes(context))


def open_blob(material: bytes, blob: Blob, context: Mapping[str, str] | None) -> bytes:
    try:
        return AESGCM(material).decrypt(blob.body[:NONCE_BYTES], blob.body[NONCE_BYTES:],
                                        blob.header + _context_bytes(context))
    except InvalidTag:
        raise InvalidCiphertext(_INVALID) from None

"""Encryption at rest for lake objects: envelope encryption in authenticated chunks.

Each encrypted object has its own data key, made by the lake's `DataKeys` (KMS for SSE-KMS, S3's own
service key for SSE-S3) and kept only sealed, in the object's metadata. The bytes are cut into chunks of
`CHUNK` plaintext bytes, each sealed with AES-256-GCM under a nonce made of the object's random prefix and
the chunk's number; the associated data says the chunk's number and whether it is the last, so chunks
cannot be reordered, dropped or cut off unnoticed. A ranged read opens only the chunks the range covers.
"""

from __future__ import annotations

import base64
import dataclasses
import secrets
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sagelab.errors import S3Error

CHUNK = 64 * 1024
TAG = 16
PREFIX_BYTES = 8
SSE_S3, SSE_KMS = "AES256", "aws:kms"


@dataclasses.dataclass(frozen=True)
class Encryption:
    """How a new object is to be encrypted: SSE-S3 (`AES256`), or SSE-KMS under the key named (any KMS KeyId form)."""

    algorithm: str
    kms_key_id: str | None = None


def under_kms_key(key_id: str | None) -> Encryption | None:
    """SSE-KMS under the key a job's output config names (its KmsKeyId), or plain when it names none."""
    return Encryption(SSE_KMS, key_id) if key_id else None


class DataKeys(Protocol):
    """Makes and opens the data keys of lake objects; `sealed` is what the object's metadata keeps."""

    def generate(self, algorithm: str, kms_key_id: str | None, object_arn: str) -> tuple[bytes, dict[str, str]]:
        ...

    def unwrap(self, sealed: Mapping[str, str], object_arn: str) -> bytes: ...


def object_arn(bucket: str, key: str) -> str:
    """The object's ARN: S3's encryption context for SSE-KMS data keys."""
    return f"arn:aws:s3:::{bucket}/{key}"


def new_nonce_prefix() -> str:
    return base64.b64encode(secrets.token_bytes(PREFIX_BYTES)).decode()


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + index.to_bytes(4, "big")


def _aad(index: int, last: bool) -> bytes:
    return index.to_bytes(8, "big") + (b"\x01" if last else b"\x00")


def chunk_count(size: int) -> int:
    return max(1, -(-size // CHUNK))


def stored_size(size: int) -> int:
    return size + chunk_count(size) * TAG


class ChunkSealer:
    """Seals a stream of plaintext pieces into the stored chunks, holding back one chunk to mark the last."""

    def __init__(self, key: bytes, prefix: str):
        self._aead = AESGCM(key)
        self._prefix = base64.b64decode(prefix)
        self._buffer = bytearray()
        self._index = 0

    def feed(self, piece: bytes) -> bytes:
        self._buffer += piece
        out = bytearray()
        while len(self._buffer) > CHUNK:
            out += self._seal(bytes(self._buffer[:CHUNK]), last=False)
            del self._buffer[:CHUNK]
        return bytes(out)

    def finish(self) -> bytes:
        sealed = self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()
        return sealed

    def _seal(self, plain: bytes, *, last: bool) -> bytes:
        sealed = self._aead.encrypt(_nonce(self._prefix, self._index), plain, _aad(self._index, last))
        self._index += 1
        return sealed


def open_range(key: bytes, prefix: str, size: int, read_stored: Callable[[int, int], bytes], start: int = 0,
               end: int | None = None) -> Iterator[bytes]:
    """Plaintext bytes [start, end] (inclusive) of an object of `size` bytes; `read_stored(offset, length)`
    reads the stored (sealed) bytes."""
    aead = AESGCM(key)
    nonce_prefix = base64.b64decode(prefix)
    last_byte = size - 1 if end is None else min(end, size - 1)
    count = chunk_count(size)
    if size == 0:
        _open(aead, nonce_prefix, 0, True, read_stored(0, TAG))
        return
    for index in range(start // CHUNK, last_byte // CHUNK + 1):
        plain_length = min(CHUNK, size - index * CHUNK)
        stored = read_stored(index * (CHUNK + TAG), plain_length + TAG)
        plain = _open(aead, nonce_prefix, index, index == count - 1, stored)
        first = start - index * CHUNK if index == start // CHUNK else 0
        yield plain[first:last_byte - index * CHUNK + 1]


def _open(aead: AESGCM, prefix: bytes, index: int, last: bool, stored: bytes) -> bytes:
    try:
        return aead.decrypt(_nonce(prefix, index), stored, _aad(index, last))
    except InvalidTag:
        raise S3Error("InternalError", "The object's stored bytes fail authentication: they were changed on disk "
                      "after it was written.", 500) from None

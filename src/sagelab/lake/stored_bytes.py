"""An object's plaintext on its way into a blob store and back out: the one path every store takes.

A store hands `StoredWrite.stored` the chunks a client sent and keeps what it yields. The write counts the
plaintext's size and MD5 (S3's ETag) and, when the object is to be encrypted at rest (asked for, or by the
bucket's default encryption), seals it chunk by chunk under a data key of its own (`lake.encryption`), so
the store never holds its plaintext. `open_stored` is the way back, for one range of a sealed object.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from sagelab.errors import S3Error
from sagelab.lake.encryption import (
    ChunkSealer,
    DataKeys,
    Encryption,
    new_nonce_prefix,
    object_arn,
    open_range,
)
from sagelab.lake.objects import ObjectInfo


def require_keys(data_keys: DataKeys | None) -> DataKeys:
    if data_keys is None:
        raise S3Error("InvalidRequest", "This lake was opened without its keys, so it cannot encrypt or "
                      "decrypt objects at rest: read encrypted objects through the server.", 400)
    return data_keys


def effective_encryption(requested: Encryption | None, bucket_facts: Mapping[str, Any]) -> Encryption | None:
    """What a write is encrypted with: what it asks for, else the bucket's default encryption. It applies to
    every writer (a training job's artifact, Athena's results, a trail's log files), as S3 applies it."""
    if requested is None and (rule := bucket_facts.get("encryption")):
        return Encryption(rule["SSEAlgorithm"], rule.get("KMSMasterKeyID"))
    return requested


@dataclasses.dataclass
class StoredWrite:
    """One object being written: what it has counted so far, and its sealer when encrypted at rest."""

    key: str
    sealer: ChunkSealer | None = None
    #: The data key sealed by the store's `DataKeys` and the nonce prefix: the object's `encryption` facts.
    sealed: dict[str, str] = dataclasses.field(default_factory=dict)
    size: int = 0
    md5: Any = dataclasses.field(default_factory=lambda: hashlib.md5(usedforsecurity=False))

    def stored(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """The bytes to store for `chunks` (the chunks themselves, or their sealed form)."""
        for chunk in chunks:
            self.md5.update(chunk)
            self.size += len(chunk)
            out = chunk if self.sealer is None else self.sealer.feed(chunk)
            if out:
                yield out
        if self.sealer is not None:
            yield self.sealer.finish()

    def info(self, *, etag: str | None, content_type: str | None, metadata: dict[str, str] | None,
             tags: dict[str, str] | None, storage_class: str) -> ObjectInfo:
        """The object's facts once every chunk went through `stored`."""
        return ObjectInfo(key=self.key, size=self.size, etag=etag or self.md5.hexdigest(), last_modified=time.time(),
                          content_type=content_type or "binary/octet-stream", metadata=dict(metadata or {}),
                          encryption=self.sealed, tags=dict(tags or {}), storage_class=storage_class)


def start_write(data_keys: DataKeys | None, bucket: str, key: str, encryption: Encryption | None) -> StoredWrite:
    """A write of `key`, sealed under a new data key when `encryption` is given."""
    if encryption is None:
        return StoredWrite(key)
    data_key, sealed = require_keys(data_keys).generate(encryption.algorithm, encryption.kms_key_id,
                                                        object_arn(bucket, key))
    sealed = {**sealed, "nonce_prefix": new_nonce_prefix()}
    return StoredWrite(key, ChunkSealer(data_key, sealed["nonce_prefix"]), sealed)


def open_stored(data_keys: DataKeys | None, bucket: str, info: ObjectInfo, read_stored: Callable[[int, int], bytes],
                start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """Plaintext [start, end] of a sealed object. Its data key is opened now, so a refusal raises here and
    not on the first chunk; `read_stored(offset, length)` reads its stored bytes."""
    data_key = require_keys(data_keys).unwrap(info.encryption, object_arn(bucket, info.key))
    return open_range(data_key, info.encryption["nonce_prefix"], info.size, read_stored, start, end)

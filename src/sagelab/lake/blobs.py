"""Where lake objects live: the `BlobStore` contract and its embedded implementation, a folder.

Layout of `LocalBlobStore` (readable by people browsing the folder):

    <root>/.buckets/<bucket>.json                 bucket facts (creation time)
    <root>/<bucket>/<seg>/<seg>/@data             the object's bytes, for key "<seg>/<seg>"
    <root>/<bucket>/<seg>/<seg>/@meta.json        size, ETag, content type, user metadata, tags, sealed data key
    <root>/<bucket>/<seg>/<seg>/@versions/        the key's other versions and delete markers (`lake.versions`)
    <root>/.staging/                              temp files and multipart parts

Each key becomes a folder so that "a" and "a/b" can both exist, as they can in S3. Segments that begin
with "@" are written with one more "@", and an empty segment (a key ending in "/") is written "@", so no
key can collide with the reserved file names. Writes go to a temp file, are fsynced and renamed into
place: a reader never sees half an object and a crash never loses an acknowledged one.

An object written with an `Encryption` is stored sealed (see `lake.encryption`): its `@data` holds only
ciphertext, its metadata the data key sealed by the store's `DataKeys`, and `local_path` has no plain file
to offer for it, so every reader goes through `read`, which opens it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sagelab.errors import S3Error, ValidationError, no_such_bucket, no_such_key
from sagelab.lake.encryption import DataKeys, Encryption
from sagelab.lake.key_paths import decode_segment, encode_segment
from sagelab.lake.objects import ARCHIVE_CLASSES as ARCHIVE_CLASSES
from sagelab.lake.objects import STORAGE_CLASSES as STORAGE_CLASSES
from sagelab.lake.objects import BucketInfo as BucketInfo
from sagelab.lake.objects import ObjectFactEdits, ObjectInfo
from sagelab.lake.stored_bytes import effective_encryption, open_stored, start_write
from sagelab.lake.uris import check_bucket_name, check_key
from sagelab.lake.versions import (
    VERSIONS_DIR,
    DeleteOutcome,
    KeyVersions,
    VersionEntry,
    key_folders,
    marker_not_allowed,
)

if TYPE_CHECKING:
    from sagelab.settings import Settings

_DATA = "@data"
_META = "@meta.json"
_CHUNK = 1 << 20


class BlobStore(Protocol):
    """The lake's storage contract. Keys are validated by the store; every write is atomic."""

    #: What seals and opens the data keys of objects encrypted at rest; None when opened without keys.
    data_keys: DataKeys | None

    def create_bucket(self, bucket: str) -> BucketInfo: ...
    def delete_bucket(self, bucket: str) -> None: ...
    def head_bucket(self, bucket: str) -> BucketInfo: ...
    def list_buckets(self) -> list[BucketInfo]: ...
    def put(self, bucket: str, key: str, chunks: Iterable[bytes], *, content_type: str | None = None,
            metadata: dict[str, str] | None = None, etag: str | None = None,
            encryption: Encryption | None = None, tags: dict[str, str] | None = None,
            storage_class: str = "STANDARD") -> ObjectInfo: ...
    def set_tags(self, bucket: str, key: str, tags: dict[str, str], version_id: str | None = None) -> ObjectInfo: ...
    def set_restored_until(self, bucket: str, key: str, until: float,
                           version_id: str | None = None) -> ObjectInfo: ...
    def set_storage_class(self, bucket: str, key: str, storage_class: str,
                          version_id: str | None = None) -> ObjectInfo: ...
    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectInfo: ...
    def read(self, bucket: str, key: str, start: int = 0, end: int | None = None,
             version_id: str | None = None) -> Iterator[bytes]: ...
    def delete(self, bucket: str, key: str, version_id: str | None = None) -> DeleteOutcome: ...
    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]: ...
    def list_versions(self, bucket: str, prefix: str = "") -> Iterator[VersionEntry]: ...
    def versioning(self, bucket: str) -> str | None: ...
    def local_path(self, bucket: str, key: str) -> Path | None: ...
    def staging_dir(self) -> Path: ...
    def bucket_encryption(self, bucket: str) -> dict | None: ...
    def set_bucket_encryption(self, bucket: str, configuration: dict | None) -> None: ...
    def bucket_config(self, bucket: str, name: str) -> object | None: ...
    def set_bucket_config(self, bucket: str, name: str, value: object | None) -> None: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore(ObjectFactEdits):
    def __init__(self, root: Path, data_keys: DataKeys | None = None):
        self.root = Path(root)
        self.data_keys = data_keys
        #: Versioned writes move a key's versions about in several steps: one at a time.
        self._versions_lock = threading.RLock()

    # --- buckets ----------------------------------------------------------------------------------
    def _bucket_meta(self, bucket: str) -> Path:
        return self.root / ".buckets" / f"{bucket}.json"

    def _bucket_dir(self, bucket: str, *, must_exist: bool = True) -> Path:
        check_bucket_name(bucket)
        if must_exist and not self._bucket_meta(bucket).exists():
            raise no_such_bucket(bucket)
        return self.root / bucket

    def create_bucket(self, bucket: str) -> BucketInfo:
        path = self._bucket_dir(bucket, must_exist=False)
        meta = self._bucket_meta(bucket)
        if meta.exists():
            raise S3Error("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket "
                          "succeeded and you already own it.", 409, BucketName=bucket)
        path.mkdir(parents=True, exist_ok=True)
        meta.parent.mkdir(parents=True, exist_ok=True)
        info = BucketInfo(bucket, time.time())
        self._atomic_write(meta, json.dumps({"created": info.created}).encode())
        return info

    def head_bucket(self, bucket: str) -> BucketInfo:
        self._bucket_dir(bucket)
        return BucketInfo(bucket, json.loads(self._bucket_meta(bucket).read_text())["created"])

    def delete_bucket(self, bucket: str) -> None:
        path = self._bucket_dir(bucket)
        if any(files for _, _, files in os.walk(path)):  # any object, old version or delete marker
            raise S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty", 409,
                          BucketName=bucket)
        self._bucket_meta(bucket).unlink()
        shutil.rmtree(path, ignore_errors=True)

    def bucket_encryption(self, bucket: str) -> dict | None:
        """The bucket's default encryption (S3's ServerSideEncryptionConfiguration), or None."""
        self._bucket_dir(bucket)
        return json.loads(self._bucket_meta(bucket).read_text()).get("encryption")

    def set_bucket_encryption(self, bucket: str, configuration: dict | None) -> None:
        self.set_bucket_config(bucket, "encryption", configuration)

    def bucket_config(self, bucket: str, name: str) -> object | None:
        """One configuration kept with the bucket's facts (its tag set, its CORS rules, ...), or None."""
        self._bucket_dir(bucket)
        return json.loads(self._bucket_meta(bucket).read_text()).get(name)

    def versioning(self, bucket: str) -> str | None:
        """The bucket's versioning status: Enabled, Suspended, or None when it was never turned on."""
        return self.bucket_config(bucket, "versioning")  # type: ignore[return-value]

    def set_bucket_config(self, bucket: str, name: str, value: object | None) -> None:
        """Set (or, with None, remove) one configuration of the bucket; it goes when the bucket goes."""
        self._bucket_dir(bucket)
        facts = json.loads(self._bucket_meta(bucket).read_text())
        if value is None:
            facts.pop(name, None)
        else:
            facts[name] = value
        self._atomic_write(self._bucket_meta(bucket), json.dumps(facts).encode())

    def list_buckets(self) -> list[BucketInfo]:
        meta_dir = self.root / ".buckets"
        if not meta_dir.exists():
            return []
        return [BucketInfo(m.stem, json.loads(m.read_text())["created"]) for m in sorted(meta_dir.glob("*.json"))]

    # --- objects ----------------------------------------------------------------------------------
    def _object_dir(self, bucket: str, key: str) -> Path:
        check_key(key)
        return self._bucket_dir(bucket).joinpath(*(encode_segment(s) for s in key.split("/")))

    def staging_dir(self) -> Path:
        path = self.root / ".staging"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _atomic_write(self, target: Path, payload: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.staging_dir())
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)

    def put(self, bucket: str, key: str, chunks: Iterable[bytes], *, content_type: str | None = None,
            metadata: dict[str, str] | None = None, etag: str | None = None,
            encryption: Encryption | None = None, tags: dict[str, str] | None = None,
            storage_class: str = "STANDARD") -> ObjectInfo:
        obj_dir = self._object_dir(bucket, key)
        facts = json.loads(self._bucket_meta(bucket).read_text())
        # The bucket's default encryption applies to every write that asks for none, and so does its
        # versioning: any writer's overwrite keeps the version it replaces.
        write = start_write(self.data_keys, bucket, key, effective_encryption(encryption, facts))
        fd, tmp = tempfile.mkstemp(dir=self.staging_dir())
        try:
            with os.fdopen(fd, "wb") as f:
                for piece in write.stored(chunks):
                    f.write(piece)
                f.flush()
                os.fsync(f.fileno())
            info = write.info(etag=etag, content_type=content_type, metadata=metadata, tags=tags,
                              storage_class=storage_class)
            if obj_dir.is_file():  # pragma: no cover - guarded by the segment encoding
                raise S3Error("InvalidArgument", f"Key {key!r} collides with stored data.", 400)
            if status := facts.get("versioning"):
                with self._versions_lock:
                    return KeyVersions(self, obj_dir, key).place(Path(tmp), info, status)
            obj_dir.mkdir(parents=True, exist_ok=True)
            # Data first, then metadata: a crash in between leaves an object whose metadata is rebuilt
            # from the data on read, never metadata pointing at missing bytes.
            os.replace(tmp, obj_dir / _DATA)
            self._atomic_write(obj_dir / _META, json.dumps(dataclasses.asdict(info)).encode())
            _fsync_dir(obj_dir)
            return info
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectInfo:
        """The current object, or with `version_id` that version of it (a delete marker's is refused)."""
        obj_dir = self._object_dir(bucket, key)
        if version_id is None:
            if (obj_dir / _DATA).exists():
                return self._info(obj_dir, key)
            versions = KeyVersions(self, obj_dir, key)
            latest = versions.latest()  # raises when a delete marker, or nothing, is the latest
            with self._versions_lock:
                versions.promote_newest()  # an object latest but not current: a write a crash cut short
            return latest
        info, _ = KeyVersions(self, obj_dir, key).find(version_id)
        if info.delete_marker:
            raise marker_not_allowed(info, "GET")
        return info

    def _update_info(self, bucket: str, key: str, version_id: str | None = None, **changes: object) -> ObjectInfo:
        obj_dir = self._object_dir(bucket, key)
        if version_id is None and (obj_dir / _DATA).exists():
            info = dataclasses.replace(self._info(obj_dir, key), **changes)
            self._atomic_write(obj_dir / _META, json.dumps(dataclasses.asdict(info)).encode())
            return info
        with self._versions_lock:
            info = dataclasses.replace(self.head(bucket, key, version_id), **changes)
            KeyVersions(self, obj_dir, key).update(info)
            return info

    def _info(self, obj_dir: Path, key: str) -> ObjectInfo:
        meta = obj_dir / _META
        try:
            return ObjectInfo(**json.loads(meta.read_text()))
        except (FileNotFoundError, ValueError):
            data = obj_dir / _DATA
            md5 = hashlib.md5(usedforsecurity=False)
            with data.open("rb") as f:
                for chunk in iter(lambda: f.read(_CHUNK), b""):
                    md5.update(chunk)
            stat = data.stat()
            return ObjectInfo(key=key, size=stat.st_size, etag=md5.hexdigest(), last_modified=stat.st_mtime)

    def read(self, bucket: str, key: str, start: int = 0, end: int | None = None,
             version_id: str | None = None) -> Iterator[bytes]:
        """Yield bytes [start, end] (inclusive end, as HTTP ranges are), opened when stored encrypted."""
        obj_dir = self._object_dir(bucket, key)
        path = obj_dir / _DATA
        try:
            if version_id is not None:
                raise FileNotFoundError
            f = path.open("rb")
            info = self._info(obj_dir, key)
        except FileNotFoundError:
            info = self.head(bucket, key, version_id)  # another version, or the latest when none is current
            try:
                f = KeyVersions(self, obj_dir, key).data_path(info).open("rb")
            except FileNotFoundError:
                raise no_such_key(key) from None
        if not info.encryption:
            return self._iter_file(f, start, end)

        def read_stored(offset: int, length: int) -> bytes:
            f.seek(offset)
            return f.read(length)
        try:
            plain = open_stored(self.data_keys, bucket, info, read_stored, start, end)
        except BaseException:
            f.close()
            raise
        return self._iter_sealed(f, plain)

    @staticmethod
    def _iter_sealed(f, plain: Iterator[bytes]) -> Iterator[bytes]:
        with f:
            yield from plain

    @staticmethod
    def _iter_file(f, start: int, end: int | None) -> Iterator[bytes]:
        with f:
            f.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                chunk = f.read(_CHUNK if remaining is None else min(_CHUNK, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def delete(self, bucket: str, key: str, version_id: str | None = None) -> DeleteOutcome:
        """Delete the object (on a versioned bucket: write a delete marker), or one version of it for good."""
        obj_dir = self._object_dir(bucket, key)
        if version_id is not None or self.versioning(bucket):  # once turned on, never off again
            with self._versions_lock:
                versions = KeyVersions(self, obj_dir, key)
                if version_id is not None:
                    return versions.delete_version(version_id)
                if status := self.versioning(bucket):
                    return versions.delete_latest(status)
        for name in (_META, _DATA):
            (obj_dir / name).unlink(missing_ok=True)
        bucket_dir = self.root / bucket
        # Remove now-empty key folders so listings and the tree stay clean.
        while obj_dir != bucket_dir:
            try:
                obj_dir.rmdir()
            except OSError:
                break
            obj_dir = obj_dir.parent
        return DeleteOutcome()

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, in S3's order (UTF-8 byte order of keys)."""
        bucket_dir = self._bucket_dir(bucket)
        # Walk only below the deepest folder the prefix fully names.
        fixed_segments = prefix.split("/")[:-1]
        start = bucket_dir.joinpath(*(encode_segment(s) for s in fixed_segments))
        if any(s in (".", "..") for s in fixed_segments) or not start.is_dir():
            return iter(())
        keys: list[tuple[bytes, str, Path]] = []
        for dirpath, dirnames, filenames in os.walk(start):
            if VERSIONS_DIR in dirnames:
                dirnames.remove(VERSIONS_DIR)
            if _DATA in filenames:
                rel = Path(dirpath).relative_to(bucket_dir)
                key = "/".join(decode_segment(s) for s in rel.parts)
                if key.startswith(prefix):
                    keys.append((key.encode(), key, Path(dirpath)))
        keys.sort()
        return (self._info(path, key) for _, key, path in keys)

    def list_versions(self, bucket: str, prefix: str = "") -> Iterator[VersionEntry]:
        """Every version and delete marker of keys starting with `prefix`: by key, newest first within a key."""
        bucket_dir = self._bucket_dir(bucket)
        fixed_segments = prefix.split("/")[:-1]
        start = bucket_dir.joinpath(*(encode_segment(s) for s in fixed_segments))
        if any(s in (".", "..") for s in fixed_segments) or not start.is_dir():
            return
        found = sorted((key.encode(), key, path) for key, path in key_folders(bucket_dir, start, decode_segment)
                       if key.startswith(prefix))
        for _, key, path in found:
            for index, info in enumerate(KeyVersions(self, path, key).all()):
                yield VersionEntry(info, index == 0)

    def local_path(self, bucket: str, key: str) -> Path | None:
        """The object's own file, when its bytes are stored as they are (not when encrypted at rest)."""
        obj_dir = self._object_dir(bucket, key)
        path = obj_dir / _DATA
        if not path.exists() or self._info(obj_dir, key).encryption:
            return None
        return path


def new_upload_id() -> str:
    return uuid.uuid4().hex


def open_blob_store(settings: Settings, data_keys: DataKeys | None = None) -> BlobStore:
    """The lake the settings name: a folder (`file://...`, or `<home>/lake` when none is named), or an external
    S3-compatible store (`s3://<bucket>/<prefix>`). Without `data_keys` it can neither write nor read objects
    encrypted at rest."""
    if settings.lake_url.startswith("s3://"):
        from sagelab.lake.s3_store import open_s3_blob_store

        return open_s3_blob_store(settings, data_keys)
    if settings.lake_url and not settings.lake_url.startswith("file://"):
        raise ValidationError(f"Setting 'lake_url' must be file:///<folder> or s3://<bucket>/<prefix> (or empty "
                              f"for <home>/lake), got {settings.lake_url!r}.")
    root = Path(settings.lake_url.removeprefix("file://")) if settings.lake_url else settings.home / "lake"
    return LocalBlobStore(root, data_keys)

"""S3 object versioning in the folder lake: the versions a key keeps beside its current object.

A key's folder holds its current version where an unversioned object lives (`@data`, `@meta.json`), so
reading the current object and listing a bucket cost what they cost without versioning. Every other version
of the key, and every delete marker, lives below it:

    <key folder>/@versions/<version id>.json      the version's ObjectInfo (a delete marker's has no bytes)
    <key folder>/@versions/<version id>.data      its bytes

The null version (written while versioning is off or suspended) is named `null` there. A version's place
changes only by renames inside one folder tree, in an order that leaves every crash with a readable latest
version: the demoted version's metadata is written before its bytes move, the newcomer's metadata before
its bytes arrive, and when no current `@data` is there (a delete marker is latest, or a crash came between)
the newest stored version is the latest one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from sagelab.errors import S3Error, no_such_key
from sagelab.lake.objects import ObjectInfo

VERSIONS_DIR = "@versions"
ENABLED, SUSPENDED = "Enabled", "Suspended"
NULL = "null"
_DATA, _META = "@data", "@meta.json"
_VERSION_ID_RE = re.compile(r"^[0-9a-f]{32}$")


@dataclasses.dataclass(frozen=True)
class DeleteOutcome:
    """What a delete did: the version it removed or the marker it wrote (botocore's DeleteObjectOutput)."""

    version_id: str | None = None
    delete_marker: bool = False


@dataclasses.dataclass(frozen=True)
class VersionEntry:
    info: ObjectInfo
    is_latest: bool


def new_version_id() -> str:
    """Opaque to clients, as S3's are; time-ordered first so that a folder listing reads oldest first."""
    return f"{time.time_ns():016x}{secrets.token_hex(8)}"


def name_of(version_id: str | None) -> str:
    """The id a version is reported and stored under: an object written unversioned is the null version."""
    return version_id or NULL


def check_version_id(version_id: str) -> str:
    if version_id != NULL and not _VERSION_ID_RE.match(version_id):
        raise S3Error("InvalidArgument", f"Invalid version id specified: versionId is {NULL!r} or a version id "
                      f"this bucket gave, got {version_id!r}.", 400, ArgumentName="versionId",
                      ArgumentValue=version_id)
    return version_id


def no_such_version(key: str, version_id: str) -> S3Error:
    return S3Error("NoSuchVersion", "The specified version does not exist.", 404, Key=key, VersionId=version_id)


def marker_headers(marker: ObjectInfo) -> tuple[tuple[str, str], ...]:
    return ("x-amz-delete-marker", "true"), ("x-amz-version-id", name_of(marker.version_id))


def marker_not_allowed(marker: ObjectInfo, method: str) -> S3Error:
    """Reading a delete marker by its version id: S3 answers 405 (the marker may only be deleted)."""
    error = S3Error("MethodNotAllowed", "The specified method is not allowed against this resource.", 405,
                    Method=method, ResourceType="DeleteMarker")
    return error.with_headers(*marker_headers(marker), ("Allow", "DELETE"))


class FolderStore(Protocol):
    """What the versions of a key use of the folder store that holds them (`lake.blobs.LocalBlobStore`)."""

    root: Path

    def _info(self, obj_dir: Path, key: str) -> ObjectInfo: ...
    def _atomic_write(self, target: Path, payload: bytes) -> None: ...


class KeyVersions:
    """The versions of one key in one bucket of a `LocalBlobStore`; its writes run under the store's lock."""

    def __init__(self, store: FolderStore, obj_dir: Path, key: str):
        self.store = store
        self.dir = obj_dir
        self.key = key
        self.vdir = obj_dir / VERSIONS_DIR

    # --- reading -----------------------------------------------------------------------------------
    def current(self) -> ObjectInfo | None:
        """The version at the key's own place, when its bytes are there."""
        if not (self.dir / _DATA).exists():
            return None
        return self.store._info(self.dir, self.key)

    def stored(self) -> list[ObjectInfo]:
        """The versions below the key's folder, newest first; half-moved ones (no bytes, no marker) left out."""
        found = []
        try:
            names = os.listdir(self.vdir)
        except (FileNotFoundError, NotADirectoryError):
            return []
        for name in names:
            if not name.endswith(".json"):
                continue
            try:
                info = ObjectInfo(**json.loads((self.vdir / name).read_text()))
            except (FileNotFoundError, ValueError):
                continue
            if info.delete_marker or (self.vdir / f"{name[:-5]}.data").exists():
                found.append(info)
        return sorted(found, key=lambda i: (i.last_modified, name_of(i.version_id)), reverse=True)

    def all(self) -> list[ObjectInfo]:
        """Every version, newest (the latest) first."""
        top = self.current()
        rest = self.stored()
        if top is None:
            return rest
        return [top, *(i for i in rest if name_of(i.version_id) != name_of(top.version_id))]

    def latest(self) -> ObjectInfo:
        """The latest version that is an object; NoSuchKey (with the marker's headers) when a marker is."""
        versions = self.all()
        if not versions:
            raise no_such_key(self.key)
        if versions[0].delete_marker:
            raise no_such_key(self.key).with_headers(*marker_headers(versions[0]))
        return versions[0]

    def find(self, version_id: str) -> tuple[ObjectInfo, Path]:
        """(the version, where its bytes are); NoSuchVersion when the key has no such version."""
        check_version_id(version_id)
        top = self.current()
        if top is not None and name_of(top.version_id) == version_id:
            return top, self.dir / _DATA
        for info in self.stored():
            if name_of(info.version_id) == version_id:
                return info, self.vdir / f"{version_id}.data"
        raise no_such_version(self.key, version_id)

    def data_path(self, info: ObjectInfo) -> Path:
        top = self.current()
        if top is not None and name_of(top.version_id) == name_of(info.version_id):
            return self.dir / _DATA
        return self.vdir / f"{name_of(info.version_id)}.data"

    # --- writing -----------------------------------------------------------------------------------
    def place(self, staged: Path, info: ObjectInfo, status: str) -> ObjectInfo:
        """Make the staged bytes the key's current version, keeping the one they replace as S3 would."""
        info = dataclasses.replace(info, version_id=new_version_id() if status == ENABLED else NULL)
        self.dir.mkdir(parents=True, exist_ok=True)
        top = self.current()
        if top is not None:  # even a null version about to be replaced: it stays readable until it is
            self._demote(top)
        # Metadata before bytes: until the bytes arrive, the newest stored version stays the latest.
        self.store._atomic_write(self.dir / _META, json.dumps(dataclasses.asdict(info)).encode())
        os.replace(staged, self.dir / _DATA)
        _fsync(self.dir)
        if status == SUSPENDED:
            self._remove_stored(NULL)  # the null version just written replaces any older one
        return info

    def delete_latest(self, status: str) -> DeleteOutcome:
        """DeleteObject without a version id on a versioned bucket: a delete marker becomes the latest."""
        top = self.current()
        if top is not None:
            if status == ENABLED or name_of(top.version_id) != NULL:
                self._demote(top)
            else:
                (self.dir / _DATA).unlink(missing_ok=True)
            (self.dir / _META).unlink(missing_ok=True)
        marker = ObjectInfo(key=self.key, size=0, etag="", last_modified=time.time(),
                            version_id=new_version_id() if status == ENABLED else NULL, delete_marker=True)
        self.vdir.mkdir(parents=True, exist_ok=True)
        self.store._atomic_write(self.vdir / f"{name_of(marker.version_id)}.json",
                                 json.dumps(dataclasses.asdict(marker)).encode())
        if status == SUSPENDED:
            (self.vdir / f"{NULL}.data").unlink(missing_ok=True)  # the null version the marker replaced
        _fsync(self.vdir)
        return DeleteOutcome(name_of(marker.version_id), True)

    def delete_version(self, version_id: str) -> DeleteOutcome:
        """Remove one version for good; when it was the latest, the next newest takes its place."""
        check_version_id(version_id)
        versions = self.all()
        target = next((v for v in versions if name_of(v.version_id) == version_id), None)
        if target is None:
            return DeleteOutcome(version_id)  # S3 answers 204 for a version that is not there
        top = self.current()
        if top is not None and name_of(top.version_id) == version_id:
            (self.dir / _DATA).unlink(missing_ok=True)
            (self.dir / _META).unlink(missing_ok=True)
        else:
            self._remove_stored(version_id)
        if target is versions[0]:
            self.promote_newest()
        self.prune()
        return DeleteOutcome(version_id, target.delete_marker)

    def update(self, info: ObjectInfo) -> None:
        """Rewrite one version's metadata (its tags, its storage class) where it lives."""
        top = self.current()
        if top is not None and name_of(top.version_id) == name_of(info.version_id):
            self.store._atomic_write(self.dir / _META, json.dumps(dataclasses.asdict(info)).encode())
        else:
            self.store._atomic_write(self.vdir / f"{name_of(info.version_id)}.json",
                                     json.dumps(dataclasses.asdict(info)).encode())

    def _demote(self, top: ObjectInfo) -> None:
        """Move the current version below the folder: its metadata first, so it is never without one."""
        name = name_of(top.version_id)
        self.vdir.mkdir(parents=True, exist_ok=True)
        self.store._atomic_write(self.vdir / f"{name}.json", json.dumps(dataclasses.asdict(top)).encode())
        os.replace(self.dir / _DATA, self.vdir / f"{name}.data")
        _fsync(self.vdir)

    def promote_newest(self) -> None:
        """The newest stored version, if it is an object, becomes current where listings see it (after its
        current version was deleted, or to mend a write that a crash stopped between its moves)."""
        stored = self.stored()
        if not stored or stored[0].delete_marker or self.current() is not None:
            return
        newest = stored[0]
        name = name_of(newest.version_id)
        self.store._atomic_write(self.dir / _META, json.dumps(dataclasses.asdict(newest)).encode())
        os.replace(self.vdir / f"{name}.data", self.dir / _DATA)
        _fsync(self.dir)
        (self.vdir / f"{name}.json").unlink(missing_ok=True)

    def _remove_stored(self, name: str) -> None:
        # The metadata goes first: bytes without it are never listed, metadata without bytes would be.
        (self.vdir / f"{name}.json").unlink(missing_ok=True)
        (self.vdir / f"{name}.data").unlink(missing_ok=True)

    def prune(self) -> None:
        """Remove the folders a key no longer needs, up to the bucket's."""
        bucket_dir = self.store.root / self.dir.relative_to(self.store.root).parts[0]
        for folder in (self.vdir, self.dir):
            with contextlib.suppress(OSError):
                folder.rmdir()
        folder = self.dir.parent
        while folder != bucket_dir and folder != self.store.root:
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def key_folders(bucket_dir: Path, start: Path, decode) -> Iterator[tuple[str, Path]]:
    """(key, folder) for every key under `start` that has a current object or stored versions, unsorted."""
    for dirpath, dirnames, filenames in os.walk(start):
        has_versions = VERSIONS_DIR in dirnames
        if has_versions:
            dirnames.remove(VERSIONS_DIR)
        if _DATA in filenames or has_versions:
            rel = Path(dirpath).relative_to(bucket_dir)
            yield "/".join(decode(s) for s in rel.parts), Path(dirpath)

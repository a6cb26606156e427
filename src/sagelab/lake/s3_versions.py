"""S3 object versioning in the external-store lake (`lake.s3_store`): the versions a key keeps.

The semantics are the folder store's (`lake.versions`), on this layout below the key's folder:

    <key folder>/@meta.json                  the current version's record, when the latest version is an object
    <key folder>/@versions/<version id>.json every other version's record, and every delete marker
    <key folder>/@data/<blob id>             the bytes of a version, named by its record

Bytes never move: a version changes place by having its record written at the new place before it is
removed from the old one, so every moment has a readable latest version, and when no `@meta.json` is
there (a delete marker is latest, or a write was cut short) the newest record in `@versions/` is the latest.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from sagelab.errors import S3Error
from sagelab.lake.objects import ObjectInfo
from sagelab.lake.s3_external import ExternalBucket, Record
from sagelab.lake.versions import (
    ENABLED,
    NULL,
    SUSPENDED,
    VERSIONS_DIR,
    DeleteOutcome,
    check_version_id,
    marker_headers,
    name_of,
    new_version_id,
    no_such_version,
)

META = "@meta.json"
DATA = "@data"


class S3KeyVersions:
    """The versions of one key; its writes run under the store's lock. `missing()` is the error for a key
    that is not there (NoSuchBucket first, when its bucket is not there either)."""

    def __init__(self, external: ExternalBucket, folder: str, key: str, missing: Callable[[], S3Error]):
        self.external = external
        self.folder = folder
        self.key = key
        self.missing = missing
        self.vdir = f"{folder}{VERSIONS_DIR}/"

    def blob_key(self, blob: str) -> str:
        return f"{self.folder}{DATA}/{blob}"

    # --- reading -----------------------------------------------------------------------------------
    def current(self) -> Record | None:
        return self.external.record(self.folder + META)

    def stored(self) -> list[Record]:
        """The records below `@versions/`, newest first."""
        found = []
        for name in self.external.keys(self.vdir):
            if name.endswith(".json") and "/" not in name[len(self.vdir):]:
                record = self.external.record(name)
                if record is not None:
                    found.append(record)
        return sorted(found, key=lambda r: (r.info.last_modified, name_of(r.info.version_id)), reverse=True)

    def all(self, *, current_missing: bool = False) -> list[Record]:
        """Every version, newest (the latest) first (`current_missing`: the caller just found no `@meta.json`)."""
        top = None if current_missing else self.current()
        rest = self.stored()
        if top is None:
            return rest
        return [top, *(r for r in rest if name_of(r.info.version_id) != name_of(top.info.version_id))]

    def latest(self, *, current_missing: bool = False) -> Record:
        """The latest version that is an object; NoSuchKey (with the marker's headers) when a marker is."""
        versions = self.all(current_missing=current_missing)
        if not versions:
            raise self.missing()
        if versions[0].info.delete_marker:
            raise self.missing().with_headers(*marker_headers(versions[0].info))
        return versions[0]

    def find(self, version_id: str) -> Record:
        check_version_id(version_id)
        top = self.current()
        if top is not None and name_of(top.info.version_id) == version_id:
            return top
        record = self.external.record(f"{self.vdir}{version_id}.json")
        if record is None:
            self.missing()  # NoSuchBucket when the bucket went; else the version is what is missing
            raise no_such_version(self.key, version_id)
        return record

    # --- writing -----------------------------------------------------------------------------------
    def place(self, info: ObjectInfo, blob: str, status: str) -> ObjectInfo:
        """Make the new blob the key's current version, keeping the one it replaces as S3 would."""
        info = dataclasses.replace(info, version_id=new_version_id() if status == ENABLED else NULL)
        top = self.current()
        replaced_null = None
        if top is not None:
            if status == SUSPENDED and name_of(top.info.version_id) == NULL:
                replaced_null = top
            else:
                self._keep(top)
        self.external.put_record(self.folder + META, Record(info, blob))
        if status == SUSPENDED:
            old_null = self.external.record(f"{self.vdir}{NULL}.json")
            self._remove_stored(NULL, old_null)  # the null version just written replaces any older one
            if replaced_null is not None and replaced_null.blob != blob:
                self._remove_blob(replaced_null)
        return info

    def delete_latest(self, status: str) -> DeleteOutcome:
        """DeleteObject without a version id on a versioned bucket: a delete marker becomes the latest."""
        top = self.current()
        old_null = self.external.record(f"{self.vdir}{NULL}.json") if status == SUSPENDED else None
        dropped = None
        if top is not None:
            if status == ENABLED or name_of(top.info.version_id) != NULL:
                self._keep(top)
            else:
                dropped = top
        marker = ObjectInfo(key=self.key, size=0, etag="", last_modified=time.time(),
                            version_id=new_version_id() if status == ENABLED else NULL, delete_marker=True)
        self.external.put_record(f"{self.vdir}{name_of(marker.version_id)}.json", Record(marker, None))
        if top is not None:
            self.external.delete(self.folder + META)
        for gone in (dropped, old_null):  # the null version the marker replaced
            if gone is not None:
                self._remove_blob(gone)
        return DeleteOutcome(name_of(marker.version_id), True)

    def delete_version(self, version_id: str) -> DeleteOutcome:
        """Remove one version for good; when it was the latest, the next newest takes its place."""
        check_version_id(version_id)
        versions = self.all()
        target = next((r for r in versions if name_of(r.info.version_id) == version_id), None)
        if target is None:
            return DeleteOutcome(version_id)  # S3 answers 204 for a version that is not there
        top = self.current()
        if top is not None and name_of(top.info.version_id) == version_id:
            self.external.delete(self.folder + META)
            self._remove_blob(target)
        else:
            self._remove_stored(version_id, target)
        if target is versions[0]:
            self.promote_newest()
        return DeleteOutcome(version_id, target.info.delete_marker)

    def update(self, info: ObjectInfo) -> None:
        """Rewrite one version's facts (its tags, its storage class) where its record is."""
        top = self.current()
        if top is not None and name_of(top.info.version_id) == name_of(info.version_id):
            self.external.put_record(self.folder + META, Record(info, top.blob))
            return
        record = self.find(name_of(info.version_id))
        self.external.put_record(f"{self.vdir}{name_of(info.version_id)}.json", Record(info, record.blob))

    def promote_newest(self) -> None:
        """The newest stored version, if an object, becomes current where listings see it (after the current
        version was deleted, or to mend a write cut short between its steps)."""
        stored = self.stored()
        if not stored or stored[0].info.delete_marker or self.current() is not None:
            return
        newest = stored[0]
        self.external.put_record(self.folder + META, newest)
        self.external.delete(f"{self.vdir}{name_of(newest.info.version_id)}.json")

    def _keep(self, top: Record) -> None:
        self.external.put_record(f"{self.vdir}{name_of(top.info.version_id)}.json", top)

    def _remove_stored(self, name: str, record: Record | None) -> None:
        # The record goes first: a record without its bytes would be listed, bytes without one never are.
        self.external.delete(f"{self.vdir}{name}.json")
        if record is not None:
            self._remove_blob(record)

    def _remove_blob(self, record: Record) -> None:
        if record.blob is not None:
            self.external.delete(self.blob_key(record.blob))

"""What the lake knows of one stored object (or one version of it), apart from its bytes, and of a bucket."""

from __future__ import annotations

import dataclasses

#: The storage classes an object may be written in (S3's documented ones); STANDARD when none is asked.
STORAGE_CLASSES = ("STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
                   "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE")
#: Classes whose objects must be restored (RestoreObject) before their bytes may be read.
ARCHIVE_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: float
    content_type: str = "binary/octet-stream"
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Empty for a plain object; else `algorithm` (AES256, aws:kms), `kms_key_arn`, the sealed data key.
    encryption: dict[str, str] = dataclasses.field(default_factory=dict)
    #: The object's tag set (S3 object tagging): kept with its metadata, so it goes when the object goes.
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    #: One of STORAGE_CLASSES: recorded and reported; the bytes are stored alike.
    storage_class: str = "STANDARD"
    #: For an archived object: until when (epoch seconds) its restored copy may be read; None if not restored.
    restored_until: float | None = None
    #: Set when written to a bucket with versioning on ("null" while it is suspended); None: never versioned.
    version_id: str | None = None
    #: A delete marker: a version with no bytes that says the key was deleted.
    delete_marker: bool = False

    def readable(self, now: float) -> bool:
        """Whether the bytes may be read now: any class but an archive one, or a live restored copy."""
        return (self.storage_class not in ARCHIVE_CLASSES
                or (self.restored_until is not None and now < self.restored_until))


@dataclasses.dataclass(frozen=True)
class BucketInfo:
    name: str
    created: float


class ObjectFactEdits:
    """What a store changes in an object's facts without touching its bytes, through the store's own
    `_update_info(bucket, key, version_id, **changes)`: tags, restore, storage class."""

    def _update_info(self, bucket: str, key: str, version_id: str | None = None, **changes: object) -> ObjectInfo:
        raise NotImplementedError

    def set_tags(self, bucket: str, key: str, tags: dict[str, str], version_id: str | None = None) -> ObjectInfo:
        """Replace the object's tag set; its bytes and the rest of its metadata stay as they are."""
        return self._update_info(bucket, key, version_id, tags=dict(tags))

    def set_restored_until(self, bucket: str, key: str, until: float, version_id: str | None = None) -> ObjectInfo:
        """Record that an archived object's restored copy may be read until `until` (epoch seconds)."""
        return self._update_info(bucket, key, version_id, restored_until=until)

    def set_storage_class(self, bucket: str, key: str, storage_class: str,
                          version_id: str | None = None) -> ObjectInfo:
        """Move the object to another class in place (a lifecycle transition): its bytes stay as they are."""
        return self._update_info(bucket, key, version_id, storage_class=storage_class, restored_until=None)

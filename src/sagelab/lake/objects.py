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

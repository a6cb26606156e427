"""The lake in an external S3-compatible store: `S3BlobStore`, chosen by `lake_url = s3://<bucket>/<prefix>`.

Layout in the external bucket, for sagelab bucket <b> and key "<seg>/<seg>" (segments encoded as the folder
store encodes them, so "a" and "a/b", keys ending "/" and "@" segments each have a folder of their own):

    <prefix>/<b>/@bucket.json                    the bucket's facts and configs (creation time, versioning, ...)
    <prefix>/<b>/<seg>/<seg>/@meta.json          the current version's record: its ObjectInfo and its blob's name
    <prefix>/<b>/<seg>/<seg>/@data/<blob id>     a version's bytes (sealed when encrypted at rest), never changed
    <prefix>/<b>/<seg>/<seg>/@versions/<id>.json the key's other versions and delete markers (`lake.s3_versions`)

S3 has no rename, so bytes never move: a write uploads a new blob, then switches the key to it with one PUT of
its `@meta.json` (atomic, as every S3 PUT is), and only then removes the blob it replaced. A reader that named
the old blob a moment before it went finds it gone and looks the key up again.

Writers in one process take one lock, as the folder store's do. Two processes overwriting one key at the same
instant can leave the loser's blob unreferenced; it is removed with its bucket. Multipart parts, Athena's
scratch and the object cache stay local, in `staging_dir`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sagelab.errors import S3Error, ValidationError, no_such_bucket, no_such_key
from sagelab.lake.encryption import CHUNK, TAG, DataKeys, Encryption, stored_size
from sagelab.lake.key_paths import decode_segment, encode_segment
from sagelab.lake.objects import BucketInfo, ObjectFactEdits, ObjectInfo
from sagelab.lake.s3_external import ExternalBucket, Record, SequentialReader, iter_body
from sagelab.lake.s3_versions import DATA, META, S3KeyVersions
from sagelab.lake.stored_bytes import effective_encryption, open_stored, start_write
from sagelab.lake.uris import check_bucket_name, check_key
from sagelab.lake.versions import VERSIONS_DIR, DeleteOutcome, VersionEntry, marker_not_allowed

if TYPE_CHECKING:
    from sagelab.settings import Settings

_BUCKET_FACTS = "@bucket.json"
#: How often a read looks a key up again when the blob it named was replaced under it.
_READ_ATTEMPTS = 3
#: A listing reads its objects' facts this many at a time, on this many threads.
_LIST_WINDOW = 32
_LIST_READERS = 8


class S3BlobStore(ObjectFactEdits):
    """Every sagelab bucket is the folder `<prefix>/<bucket>/` of one bucket of an external S3 store."""

    def __init__(self, external: ExternalBucket, prefix: str, staging: Path, data_keys: DataKeys | None = None):
        self.external = external
        self.prefix = prefix.strip("/")
        self.staging = Path(staging)
        self.data_keys = data_keys
        self._lock = threading.RLock()

    # --- where things are -------------------------------------------------------------------------
    def _top(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def _base(self, bucket: str) -> str:
        check_bucket_name(bucket)
        return f"{self._top()}{bucket}/"

    def _folder(self, bucket: str, key: str) -> str:
        check_key(key)
        return self._base(bucket) + "".join(encode_segment(s) + "/" for s in key.split("/"))

    def _versions(self, bucket: str, key: str) -> S3KeyVersions:
        return S3KeyVersions(self.external, self._folder(bucket, key), key, lambda: self._missing(bucket, key))

    def _missing(self, bucket: str, key: str) -> S3Error:
        """The error for a key that is not there: NoSuchBucket when its bucket is not there either."""
        self._facts(bucket)
        return no_such_key(key)

    def staging_dir(self) -> Path:
        self.staging.mkdir(parents=True, exist_ok=True)
        return self.staging

    def local_path(self, bucket: str, key: str) -> Path | None:
        """None: no object has a local file; readers go through `read` (see `lake.files`)."""
        check_bucket_name(bucket)
        check_key(key)
        return None

    # --- buckets ----------------------------------------------------------------------------------
    def _facts(self, bucket: str) -> dict[str, Any]:
        body = self.external.get(self._base(bucket) + _BUCKET_FACTS)
        if body is None:
            raise no_such_bucket(bucket)
        return json.loads(body)

    def create_bucket(self, bucket: str) -> BucketInfo:
        info = BucketInfo(bucket, time.time())
        facts = self._base(bucket) + _BUCKET_FACTS
        # Looked for first too: not every S3-compatible store honours a conditional PUT (If-None-Match).
        if self.external.get(facts) is not None or not self.external.put(
                facts, json.dumps({"created": info.created}).encode(), only_new=True):
            raise S3Error("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket "
                          "succeeded and you already own it.", 409, BucketName=bucket)
        return info

    def head_bucket(self, bucket: str) -> BucketInfo:
        return BucketInfo(bucket, self._facts(bucket)["created"])

    def delete_bucket(self, bucket: str) -> None:
        self._facts(bucket)
        base = self._base(bucket)
        keys = list(self.external.keys(base))
        rest = [k[len(base):] for k in keys]
        if any(r.endswith("/" + META) or f"/{VERSIONS_DIR}/" in f"/{r}" for r in rest):
            raise S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty", 409, BucketName=bucket)
        # The facts first: from then on the bucket is gone, whatever is left of blobs nobody names.
        self.external.delete(base + _BUCKET_FACTS)
        self.external.delete(*(k for k in keys if k != base + _BUCKET_FACTS))

    def list_buckets(self) -> list[BucketInfo]:
        found = []
        for folder in self.external.folders(self._top()):
            name = folder[len(self._top()):].rstrip("/")
            body = self.external.get(folder + _BUCKET_FACTS)
            if body is not None:
                found.append(BucketInfo(name, json.loads(body)["created"]))
        return sorted(found, key=lambda b: b.name)

    def bucket_encryption(self, bucket: str) -> dict | None:
        """The bucket's default encryption (S3's ServerSideEncryptionConfiguration), or None."""
        return self._facts(bucket).get("encryption")

    def set_bucket_encryption(self, bucket: str, configuration: dict | None) -> None:
        self.set_bucket_config(bucket, "encryption", configuration)

    def bucket_config(self, bucket: str, name: str) -> object | None:
        """One configuration kept with the bucket's facts (its tag set, its CORS rules, ...), or None."""
        return self._facts(bucket).get(name)

    def versioning(self, bucket: str) -> str | None:
        """The bucket's versioning status: Enabled, Suspended, or None when it was never turned on."""
        return self.bucket_config(bucket, "versioning")  # type: ignore[return-value]

    def set_bucket_config(self, bucket: str, name: str, value: object | None) -> None:
        """Set (or, with None, remove) one configuration of the bucket; it goes when the bucket goes."""
        with self._lock:
            facts = self._facts(bucket)
            if value is None:
                facts.pop(name, None)
            else:
                facts[name] = value
            self.external.put(self._base(bucket) + _BUCKET_FACTS, json.dumps(facts).encode())

    # --- writing ----------------------------------------------------------------------------------
    def put(self, bucket: str, key: str, chunks: Iterable[bytes], *, content_type: str | None = None,
            metadata: dict[str, str] | None = None, etag: str | None = None,
            encryption: Encryption | None = None, tags: dict[str, str] | None = None,
            storage_class: str = "STANDARD") -> ObjectInfo:
        folder = self._folder(bucket, key)
        facts = self._facts(bucket)
        # The bucket's default encryption applies to every write that asks for none, and so does its
        # versioning: any writer's overwrite keeps the version it replaces.
        write = start_write(self.data_keys, bucket, key, effective_encryption(encryption, facts))
        blob = uuid.uuid4().hex
        self.external.upload(f"{folder}{DATA}/{blob}", write.stored(chunks))
        info = write.info(etag=etag, content_type=content_type, metadata=metadata, tags=tags,
                          storage_class=storage_class)
        try:
            with self._lock:
                if status := facts.get("versioning"):
                    return self._versions(bucket, key).place(info, blob, status)
                replaced = self.external.record(folder + META)
                self.external.put_record(folder + META, Record(info, blob))
        except BaseException:
            self._discard_unless_current(folder, blob)
            raise
        if replaced is not None and replaced.blob not in (None, blob):
            self.external.delete(f"{folder}{DATA}/{replaced.blob}")
        return info

    def _discard_unless_current(self, folder: str, blob: str) -> None:
        """After a write failed: remove its blob, unless the key was switched to it before the failure."""
        with contextlib.suppress(S3Error):  # the write's own failure is the one to report
            current = self.external.record(folder + META)
            if current is None or current.blob != blob:
                self.external.delete(f"{folder}{DATA}/{blob}")

    def _update_info(self, bucket: str, key: str, version_id: str | None = None, **changes: object) -> ObjectInfo:
        folder = self._folder(bucket, key)
        with self._lock:
            if version_id is None and (current := self.external.record(folder + META)) is not None:
                info = dataclasses.replace(current.info, **changes)
                self.external.put_record(folder + META, Record(info, current.blob))
                return info
            info = dataclasses.replace(self.head(bucket, key, version_id), **changes)
            self._versions(bucket, key).update(info)
            return info

    def delete(self, bucket: str, key: str, version_id: str | None = None) -> DeleteOutcome:
        """Delete the object (on a versioned bucket: write a delete marker), or one version of it for good."""
        folder = self._folder(bucket, key)
        status = self._facts(bucket).get("versioning")
        with self._lock:
            if version_id is not None:
                return self._versions(bucket, key).delete_version(version_id)
            if status:  # once turned on, never off again
                return self._versions(bucket, key).delete_latest(status)
            current = self.external.record(folder + META)
            if current is not None:
                self.external.delete(folder + META)
                if current.blob is not None:
                    self.external.delete(f"{folder}{DATA}/{current.blob}")
        return DeleteOutcome()

    # --- reading ----------------------------------------------------------------------------------
    def _record(self, bucket: str, key: str, version_id: str | None) -> Record:
        versions = self._versions(bucket, key)
        if version_id is None:
            current = versions.current()
            if current is not None:
                return current
            latest = versions.latest(current_missing=True)  # raises when a marker, or nothing, is the latest
            with self._lock:
                versions.promote_newest()  # an object latest but not current: a write cut short
            return latest
        record = versions.find(version_id)
        if record.info.delete_marker:
            raise marker_not_allowed(record.info, "GET")
        return record

    def head(self, bucket: str, key: str, version_id: str | None = None) -> ObjectInfo:
        """The current object, or with `version_id` that version of it (a delete marker's is refused)."""
        return self._record(bucket, key, version_id).info

    def read(self, bucket: str, key: str, start: int = 0, end: int | None = None,
             version_id: str | None = None) -> Iterator[bytes]:
        """Yield bytes [start, end] (inclusive end, as HTTP ranges are), opened when stored encrypted."""
        folder = self._folder(bucket, key)
        for _ in range(_READ_ATTEMPTS):
            record = self._record(bucket, key, version_id)
            info = record.info
            last = info.size - 1 if end is None else min(end, info.size - 1)
            if not info.encryption:
                if start > last:
                    return iter(())
                body = self.external.open(f"{folder}{DATA}/{record.blob}", start, last)
                if body is not None:
                    return iter_body(body)
                continue
            if start > last and info.size:
                return iter(())
            # A sealed object: fetch the stored bytes of the chunks the range covers, in one GET.
            first_chunk, last_chunk = start // CHUNK, max(last, 0) // CHUNK
            first_byte = first_chunk * (CHUNK + TAG)
            last_byte = min(stored_size(info.size), (last_chunk + 1) * (CHUNK + TAG)) - 1
            body = self.external.open(f"{folder}{DATA}/{record.blob}", first_byte, last_byte)
            if body is None:
                continue
            try:
                plain = open_stored(self.data_keys, bucket, info, SequentialReader(body, first_byte), start, end)
            except BaseException:
                body.close()
                raise
            return _closing(body, plain)
        raise no_such_key(key)

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, in S3's order (UTF-8 byte order of keys)."""
        self._facts(bucket)
        found = sorted((key.encode(), key, name) for key, name, kind in self._key_entries(bucket, prefix)
                       if kind == "current")
        return self._infos([name for _, _, name in found])

    def _infos(self, names: list[str]) -> Iterator[ObjectInfo]:
        """The objects' facts, in order. Each is one GET; a long listing makes them a window at a time on a
        few threads, so it costs round trips by the window, not by the object."""
        if len(names) <= _LIST_WINDOW:
            records: Iterable[Record | None] = map(self.external.record, names)
            yield from (record.info for record in records if record is not None)
            return
        with concurrent.futures.ThreadPoolExecutor(_LIST_READERS, thread_name_prefix="s3-lake-list") as pool:
            for start in range(0, len(names), _LIST_WINDOW):
                for record in pool.map(self.external.record, names[start:start + _LIST_WINDOW]):
                    if record is not None:  # deleted since it was listed
                        yield record.info

    def list_versions(self, bucket: str, prefix: str = "") -> Iterator[VersionEntry]:
        """Every version and delete marker of keys starting with `prefix`: by key, newest first within a key."""
        self._facts(bucket)
        keys = sorted({(key.encode(), key) for key, _, _ in self._key_entries(bucket, prefix)})
        return self._version_entries(bucket, [key for _, key in keys])

    def _version_entries(self, bucket: str, keys: list[str]) -> Iterator[VersionEntry]:
        for key in keys:
            for index, record in enumerate(self._versions(bucket, key).all()):
                yield VersionEntry(record.info, index == 0)

    def _key_entries(self, bucket: str, prefix: str) -> Iterator[tuple[str, str, str]]:
        """(key, record name, "current" or "version") for every record of a key starting with `prefix`."""
        base = self._base(bucket)
        fixed = prefix.split("/")[:-1]  # list only below the deepest folder the prefix fully names
        start = base + "".join(encode_segment(s) + "/" for s in fixed)
        for name in self.external.keys(start):
            parts = name[len(base):].split("/")
            if parts[-1] == META:
                folder, kind = parts[:-1], "current"
            elif len(parts) > 2 and parts[-2] == VERSIONS_DIR and parts[-1].endswith(".json"):
                folder, kind = parts[:-2], "version"
            else:
                continue
            key = "/".join(decode_segment(s) for s in folder)
            if key.startswith(prefix):
                yield key, name, kind


def _closing(body: Any, plain: Iterator[bytes]) -> Iterator[bytes]:
    with body:
        yield from plain


def parse_lake_url(url: str) -> tuple[str, str]:
    """(external bucket, prefix) of `s3://bucket/prefix`."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    try:
        check_bucket_name(bucket)
    except S3Error:
        raise ValidationError(f"Setting 'lake_url' must be s3://<bucket>/<prefix> naming an S3 bucket, got "
                              f"{url!r}.") from None
    return bucket, prefix.strip("/")


def open_s3_blob_store(settings: Settings, data_keys: DataKeys | None = None) -> S3BlobStore:
    """The store `lake_url = s3://...` names, reached at `lake_endpoint_url` (else S3's own endpoints) with
    the lake's credentials (else boto3's usual chain)."""
    import boto3
    from botocore.config import Config

    bucket, prefix = parse_lake_url(settings.lake_url)
    endpoint = settings.lake_endpoint_url or None
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise ValidationError(f"Setting 'lake_endpoint_url' must be an http:// or https:// URL, got {endpoint!r}.")
    if bool(settings.lake_access_key_id) != bool(settings.lake_secret_access_key):
        raise ValidationError("Settings 'lake_access_key_id' and 'lake_secret_access_key' are set together or "
                              "not at all.")
    credentials = {"aws_access_key_id": settings.lake_access_key_id,
                   "aws_secret_access_key": settings.lake_secret_access_key} if settings.lake_access_key_id else {}
    # AWS_ENDPOINT_URL in this process's environment may point at this sagelab server (the clients' setup
    # does that): the lake is reached only where its own settings say.
    config = Config(s3={"addressing_style": "path"}, max_pool_connections=32, ignore_configured_endpoint_urls=True,
                    retries={"max_attempts": 5, "mode": "standard"})
    client = boto3.session.Session().client("s3", endpoint_url=endpoint,
                                            region_name=settings.lake_region or settings.region, config=config,
                                            **credentials)
    external = ExternalBucket(client, bucket)
    external.check(endpoint)
    return S3BlobStore(external, prefix, settings.home / "lake-staging", data_keys)

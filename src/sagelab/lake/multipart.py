"""Multipart uploads: parts staged beside the blob store until the upload is completed or aborted.

Layout, under `blobs.staging_dir()`:

    multipart/<uploadId>/upload.json            bucket, key, content type, user metadata, initiation time
    multipart/<uploadId>/<nnnnn>-<md5>.part     the bytes of part nnnnn
    multipart/<uploadId>/<nnnnn>.json           which .part file is part nnnnn now: ETag, size, time

Parts arrive concurrently and may be re-sent, so each part's bytes are written under a name of their own
and its small JSON pointer is replaced atomically last: a reader sees the old part or the new one, whole.
Completing streams the chosen parts, in order, into `blobs.put` under S3's multipart ETag,
`md5(concat(binary part md5s))-<part count>`, then removes the upload's folder.

An upload that is to be encrypted at rest is given a data key of its own when it starts (kept sealed in
its manifest), and each staged part is sealed under it, so no part waits on disk in plain either.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from sagelab.errors import S3Error
from sagelab.lake.blobs import BlobStore, ObjectInfo, new_upload_id
from sagelab.lake.encryption import ChunkSealer, Encryption, new_nonce_prefix, object_arn, open_range
from sagelab.lake.uris import check_key

MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_NUMBER = 10_000
_UPLOAD_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_MANIFEST = "upload.json"
_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Upload:
    upload_id: str
    bucket: str
    key: str
    content_type: str | None
    metadata: dict[str, str]
    initiated: float
    #: How the completed object is to be encrypted (algorithm, kms_key_id), and the sealed key of its parts.
    encryption: dict[str, str] | None = None
    part_key: dict[str, str] | None = None
    #: What the completed object is tagged with, and its storage class.
    tags: dict[str, str] | None = None
    storage_class: str = "STANDARD"

    @property
    def object_encryption(self) -> Encryption | None:
        return Encryption(**self.encryption) if self.encryption else None


@dataclasses.dataclass(frozen=True)
class Part:
    number: int
    etag: str
    size: int
    last_modified: float
    #: Set when the part is stored sealed under its upload's part key.
    nonce_prefix: str = ""


def no_such_upload(upload_id: str) -> S3Error:
    return S3Error("NoSuchUpload", "The specified multipart upload does not exist. The upload ID may be invalid, "
                   "or the upload may have been aborted or completed.", 404, UploadId=upload_id)


def _write_atomic(folder: Path, name: str, payload: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / name)


class MultipartUploads:
    def __init__(self, blobs: BlobStore):
        self.blobs = blobs

    def _root(self) -> Path:
        return self.blobs.staging_dir() / "multipart"

    def _folder(self, upload_id: str) -> Path:
        if not _UPLOAD_ID_RE.match(upload_id):
            raise no_such_upload(upload_id)
        return self._root() / upload_id

    # --- lifecycle --------------------------------------------------------------------------------
    def create(self, bucket: str, key: str, *, content_type: str | None = None,
               metadata: dict[str, str] | None = None, encryption: Encryption | None = None,
               tags: dict[str, str] | None = None, storage_class: str = "STANDARD") -> Upload:
        self.blobs.head_bucket(bucket)
        check_key(key)
        part_key = None
        if encryption is not None:
            keys = self._keys()
            _, part_key = keys.generate(encryption.algorithm, encryption.kms_key_id, object_arn(bucket, key))
        upload = Upload(new_upload_id(), bucket, key, content_type, dict(metadata or {}), time.time(),
                        dataclasses.asdict(encryption) if encryption else None, part_key, dict(tags or {}),
                        storage_class)
        folder = self._root() / upload.upload_id
        folder.mkdir(parents=True)
        _write_atomic(folder, _MANIFEST, json.dumps(dataclasses.asdict(upload)).encode())
        return upload

    def _keys(self):
        keys = getattr(self.blobs, "data_keys", None)
        if keys is None:
            raise S3Error("InvalidRequest", "This lake was opened without its keys: it cannot encrypt uploads.", 400)
        return keys

    def _part_key(self, upload: Upload) -> bytes:
        return self._keys().unwrap(upload.part_key, object_arn(upload.bucket, upload.key))

    def get(self, upload_id: str, bucket: str, key: str) -> Upload:
        """The upload, which must have been started for this bucket and key."""
        try:
            upload = Upload(**json.loads((self._folder(upload_id) / _MANIFEST).read_text()))
        except (FileNotFoundError, NotADirectoryError):
            raise no_such_upload(upload_id) from None
        if (upload.bucket, upload.key) != (bucket, key):
            raise no_such_upload(upload_id)
        return upload

    def abort(self, upload_id: str, bucket: str, key: str) -> None:
        self.get(upload_id, bucket, key)
        shutil.rmtree(self._folder(upload_id), ignore_errors=True)

    def uploads(self, bucket: str) -> list[Upload]:
        """Uploads in progress for `bucket`, by key then initiation time."""
        self.blobs.head_bucket(bucket)
        found = []
        root = self._root()
        for manifest in root.glob(f"*/{_MANIFEST}") if root.exists() else ():
            try:
                upload = Upload(**json.loads(manifest.read_text()))
            except (FileNotFoundError, ValueError):
                continue
            if upload.bucket == bucket:
                found.append(upload)
        return sorted(found, key=lambda u: (u.key.encode(), u.initiated))

    # --- parts ------------------------------------------------------------------------------------
    def put_part(self, upload_id: str, bucket: str, key: str, number: int, chunks: Iterable[bytes]) -> Part:
        upload = self.get(upload_id, bucket, key)
        if not 1 <= number <= MAX_PART_NUMBER:
            raise S3Error("InvalidArgument", f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, "
                          "inclusive.", 400, ArgumentName="partNumber", ArgumentValue=str(number))
        folder = self._folder(upload_id)
        md5 = hashlib.md5(usedforsecurity=False)
        size = 0
        prefix = new_nonce_prefix() if upload.part_key else ""
        sealer = ChunkSealer(self._part_key(upload), prefix) if prefix else None
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        except FileNotFoundError:  # aborted or completed meanwhile
            raise no_such_upload(upload_id) from None
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    md5.update(chunk)
                    size += len(chunk)
                    f.write(chunk if sealer is None else sealer.feed(chunk))
                if sealer is not None:
                    f.write(sealer.finish())
                f.flush()
                os.fsync(f.fileno())
            part = Part(number, md5.hexdigest(), size, time.time(), prefix)
            os.replace(tmp, folder / f"{number:05d}-{part.etag}.part")
            _write_atomic(folder, f"{number:05d}.json", json.dumps(dataclasses.asdict(part)).encode())
            return part
        except FileNotFoundError:
            raise no_such_upload(upload_id) from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def parts(self, upload: Upload) -> list[Part]:
        """The parts uploaded so far, by part number."""
        found = []
        for pointer in sorted(self._folder(upload.upload_id).glob("[0-9]*.json")):
            try:
                found.append(Part(**json.loads(pointer.read_text())))
            except (FileNotFoundError, ValueError):
                continue
        return found

    # --- completion -------------------------------------------------------------------------------
    def complete(self, upload_id: str, bucket: str, key: str, chosen: list[tuple[int, str]]) -> ObjectInfo:
        """Assemble the parts `chosen` as (part number, ETag), in ascending part order, into the object."""
        upload = self.get(upload_id, bucket, key)
        if not chosen:
            raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate against "
                          "our published schema: a multipart upload must name at least one part.", 400)
        numbers = [number for number, _ in chosen]
        if any(b <= a for a, b in zip(numbers, numbers[1:], strict=False)):
            raise S3Error("InvalidPartOrder", "The list of parts was not in ascending order. The parts list must "
                          "be specified in order by part number.", 400, UploadId=upload_id)
        stored = {part.number: part for part in self.parts(upload)}
        parts = []
        for number, etag in chosen:
            part = stored.get(number)
            if part is None or part.etag != etag.strip().strip('"'):
                raise S3Error("InvalidPart", "One or more of the specified parts could not be found. The part may "
                              "not have been uploaded, or the specified entity tag may not match the part's entity "
                              "tag.", 400, UploadId=upload_id, PartNumber=str(number), ETag=etag)
            parts.append(part)
        for part in parts[:-1]:
            if part.size < MIN_PART_SIZE:
                raise S3Error("EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object "
                              "size.", 400, ProposedSize=str(part.size), MinSizeAllowed=str(MIN_PART_SIZE),
                              PartNumber=str(part.number), ETag=part.etag)
        digest = hashlib.md5(b"".join(bytes.fromhex(p.etag) for p in parts), usedforsecurity=False)
        folder = self._folder(upload_id)
        part_key = self._part_key(upload) if upload.part_key else b""
        info = self.blobs.put(bucket, key, self._read_parts(folder, parts, part_key),
                              content_type=upload.content_type, metadata=upload.metadata,
                              etag=f"{digest.hexdigest()}-{len(parts)}", encryption=upload.object_encryption,
                              tags=upload.tags, storage_class=upload.storage_class)
        shutil.rmtree(folder, ignore_errors=True)
        return info

    @staticmethod
    def _read_parts(folder: Path, parts: list[Part], part_key: bytes) -> Iterator[bytes]:
        for part in parts:
            try:
                f = (folder / f"{part.number:05d}-{part.etag}.part").open("rb")
            except FileNotFoundError:
                raise no_such_upload(folder.name) from None
            with f:
                if not part.nonce_prefix:
                    yield from iter(lambda f=f: f.read(_CHUNK), b"")
                    continue

                def read_stored(offset: int, length: int, f=f) -> bytes:
                    f.seek(offset)
                    return f.read(length)
                yield from open_range(part_key, part.nonce_prefix, part.size, read_stored)

"""The one bucket of an external S3-compatible store that holds an `S3BlobStore`'s lake, through boto3.

Everything the lake keeps there is either a small JSON record (bucket facts, an object version's facts) or
a blob, an object's stored bytes, written once under a name of its own and never changed. Missing objects
read as None rather than as botocore's errors, so the store above speaks only in lake terms; a store that
fails, or cannot be reached, is an S3 ServiceUnavailable naming the settings that point at it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from sagelab.errors import S3Error, ValidationError
from sagelab.lake.objects import ObjectInfo

#: Bodies up to this size go up in one PUT; larger ones as a multipart upload of parts this size.
PART_SIZE = 8 << 20
_READ_CHUNK = 1 << 20
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
_TAKEN = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})


@dataclasses.dataclass(frozen=True)
class Record:
    """One version's facts as kept in the external store, and the blob holding its bytes (None: a marker)."""

    info: ObjectInfo
    blob: str | None

    def dump(self) -> bytes:
        return json.dumps({**dataclasses.asdict(self.info), "blob": self.blob}).encode()

    @classmethod
    def load(cls, body: bytes) -> Record:
        fields = json.loads(body)
        blob = fields.pop("blob", None)
        return cls(ObjectInfo(**fields), blob)


def store_failure(exc: Exception) -> S3Error:
    return S3Error("ServiceUnavailable", f"The lake's external S3 store failed ({exc}); check lake_url and "
                   "lake_endpoint_url and that the store is up.", 503)


def is_missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in _MISSING


@dataclasses.dataclass
class ExternalBucket:
    """The external bucket `name`, reached with a boto3 S3 `client` (thread-safe: one serves every thread)."""

    client: Any
    name: str

    def _call(self, operation: str, **params: Any) -> Any:
        """One S3 call on the bucket; its ClientError (an answer) is the caller's to read, no answer is a failure."""
        try:
            return getattr(self.client, operation)(Bucket=self.name, **params)
        except BotoCoreError as exc:
            raise store_failure(exc) from None

    def check(self, endpoint: str | None) -> None:
        """Refuse, naming the setting to fix, a lake whose store cannot be reached or has no such bucket."""
        where = endpoint or "AWS S3"
        try:
            self.client.head_bucket(Bucket=self.name)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise ValidationError(f"Setting 'lake_url' names the bucket {self.name!r}, which the store at "
                                      f"{where} does not have: create it first.") from None
            if code in ("403", "AccessDenied", "Forbidden"):
                raise ValidationError(f"The store at {where} refuses access to the bucket {self.name!r} of setting "
                                      "'lake_url': check lake_access_key_id and lake_secret_access_key.") from None
            raise store_failure(exc) from None
        except BotoCoreError as exc:
            raise ValidationError(f"Setting 'lake_endpoint_url': the lake's store at {where} cannot be reached "
                                  f"({exc}).") from None

    # --- records ----------------------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        try:
            response = self._call("get_object", Key=key)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise store_failure(exc) from None
        with response["Body"] as body:
            return body.read()

    def put(self, key: str, body: bytes, *, only_new: bool = False) -> bool:
        """Write `body` at `key`; with `only_new`, only where nothing is yet (False when something was)."""
        try:
            self._call("put_object", Key=key, Body=body, **({"IfNoneMatch": "*"} if only_new else {}))
        except ClientError as exc:
            if only_new and exc.response.get("Error", {}).get("Code") in _TAKEN:
                return False
            raise store_failure(exc) from None
        return True

    def record(self, key: str) -> Record | None:
        body = self.get(key)
        return None if body is None else Record.load(body)

    def put_record(self, key: str, record: Record) -> None:
        self.put(key, record.dump())

    def delete(self, *keys: str) -> None:
        """Remove the objects (those already gone are no failure)."""
        for start in range(0, len(keys), 1000):
            batch = keys[start:start + 1000]
            try:
                if len(batch) == 1:
                    self._call("delete_object", Key=batch[0])
                else:
                    self._call("delete_objects", Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            except ClientError as exc:
                raise store_failure(exc) from None

    def keys(self, prefix: str) -> Iterator[str]:
        """Every key under `prefix`, in the store's (UTF-8 byte) order."""
        yield from (item["Key"] for page in self._pages(prefix) for item in page.get("Contents", []))

    def folders(self, prefix: str) -> list[str]:
        """The next "/"-ended level of keys under `prefix` (S3's common prefixes)."""
        return [p["Prefix"] for page in self._pages(prefix, Delimiter="/") for p in page.get("CommonPrefixes", [])]

    def _pages(self, prefix: str, **params: Any) -> Iterator[dict]:
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            yield from paginator.paginate(Bucket=self.name, Prefix=prefix, **params)
        except (ClientError, BotoCoreError) as exc:
            raise store_failure(exc) from None

    # --- blobs ------------------------------------------------------------------------------------
    def upload(self, key: str, pieces: Iterable[bytes]) -> None:
        """Store the stream at `key`: one PUT when it is small, else a multipart upload, so no more than a
        part is ever held in memory. Nothing is at `key` until the whole stream is (S3 completes atomically)."""
        buffer = bytearray()
        upload_id = None
        parts: list[dict[str, Any]] = []
        try:
            for piece in pieces:
                buffer += piece
                while len(buffer) >= PART_SIZE:
                    if upload_id is None:
                        upload_id = self._call("create_multipart_upload", Key=key)["UploadId"]
                    parts.append(self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer[:PART_SIZE])))
                    del buffer[:PART_SIZE]
            if upload_id is None:
                self._call("put_object", Key=key, Body=bytes(buffer))
                return
            if buffer or not parts:
                parts.append(self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
            self._call("complete_multipart_upload", Key=key, UploadId=upload_id,
                       MultipartUpload={"Parts": parts})
        except BaseException as exc:
            if upload_id is not None:
                # The failure that brought us here is the one to report.
                with contextlib.suppress(ClientError, S3Error):
                    self._call("abort_multipart_upload", Key=key, UploadId=upload_id)
            if isinstance(exc, ClientError):
                raise store_failure(exc) from None
            raise

    def _upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        response = self._call("upload_part", Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        return {"PartNumber": number, "ETag": response["ETag"]}

    def open(self, key: str, first: int = 0, last: int | None = None) -> Any | None:
        """A streaming body of bytes [first, last] (inclusive) of the blob, or None when it is gone."""
        byte_range = f"bytes={first}-{'' if last is None else last}"
        try:
            response = self._call("get_object", Key=key, Range=byte_range)
        except ClientError as exc:
            if is_missing(exc):
                return None
            raise store_failure(exc) from None
        return response["Body"]


def iter_body(body: Any) -> Iterator[bytes]:
    with body:
        yield from body.iter_chunks(_READ_CHUNK)


class SequentialReader:
    """`read_stored(offset, length)` over one streaming body of a blob's range, read front to back (as the
    chunks of a sealed object are opened), so a ranged read of a sealed object is one GET, not one per chunk."""

    def __init__(self, body: Any, first: int):
        self.body = body
        self.position = first

    def __call__(self, offset: int, length: int) -> bytes:
        if offset != self.position:
            raise S3Error("InternalError", f"Sealed chunks were read out of order (at {offset}, expected "
                          f"{self.position}).", 500)
        out = bytearray()
        while len(out) < length:
            piece = self.body.read(length - len(out))
            if not piece:
                break
            out += piece
        self.position += len(out)
        return bytes(out)

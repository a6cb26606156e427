"""`s3://bucket/key` URIs and the names they may contain."""

from __future__ import annotations

import re
from typing import NamedTuple

from sagelab.errors import S3Error, ValidationError

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


class S3Uri(NamedTuple):
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def join(self, *parts: str) -> S3Uri:
        key = self.key.rstrip("/")
        for part in parts:
            key = f"{key}/{part.strip('/')}" if key else part.strip("/")
        return S3Uri(self.bucket, key)


def parse_s3_uri(uri: str, *, field: str = "S3Uri") -> S3Uri:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ValidationError(f"{field} must be an s3://bucket/key URI, got {uri!r}.")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValidationError(f"{field} must name a bucket, got {uri!r}.")
    return S3Uri(bucket, key)


def check_bucket_name(bucket: str) -> None:
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise S3Error("InvalidBucketName", f"The specified bucket is not valid: {bucket!r}. Bucket names are "
                      "3-63 characters of lowercase letters, digits, dots and hyphens.", 400,
                      BucketName=bucket)


def check_key(key: str) -> None:
    """Keys must stay inside their bucket: no `.`/`..` segments, no leading slash, no NUL."""
    if not key:
        raise S3Error("InvalidArgument", "Object key must not be empty.", 400)
    if len(key.encode()) > 1024:
        raise S3Error("KeyTooLongError", "Your key is too long (more than 1024 bytes).", 400)
    segments = key.split("/")
    if key.startswith("/") or "\x00" in key or any(s in (".", "..") for s in segments):
        raise S3Error("InvalidArgument", f"Object key {key!r} is not allowed: keys may not start with '/' or "
                      "contain '.' or '..' path segments or NUL characters.", 400)

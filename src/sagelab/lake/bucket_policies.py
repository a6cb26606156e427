"""S3 bucket policies: one resource-based policy per bucket, kept in the metadata store beside the resources.

A policy is parsed when it is put (a malformed one is refused with S3's MalformedPolicy) and cached parsed,
since every S3 call on the bucket is evaluated against it. The cache belongs to the server, the only writer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sagelab.errors import S3Error
from sagelab.security.policy_document import PolicyDocument, PolicyKind, parse_policy
from sagelab.storage.resources import ResourceStore

BUCKET_POLICY = "s3-bucket-policy"


def no_such_bucket_policy(bucket: str) -> S3Error:
    return S3Error("NoSuchBucketPolicy", "The bucket policy does not exist", 404, BucketName=bucket)


def read_bucket_policy(resources: ResourceStore, bucket: str) -> PolicyDocument | None:
    """The bucket's policy straight from the store (for a job process, which keeps no cache)."""
    found = resources.get(BUCKET_POLICY, bucket)
    return parse_policy(found.doc["Policy"], PolicyKind.RESOURCE) if found is not None else None


class BucketPolicies:
    def __init__(self, *, resources: ResourceStore):
        self.resources = resources
        self._parsed: dict[str, PolicyDocument | None] = {}
        self._lock = threading.Lock()
        #: Bumped by every change: a read that raced a change does not cache what it read.
        self._generation = 0
        self._listeners: list[Callable[[], None]] = []

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self, bucket: str) -> None:
        with self._lock:
            self._parsed.pop(bucket, None)
            self._generation += 1
        for listener in self._listeners:
            listener()

    def put(self, bucket: str, text: str) -> None:
        parse_policy(text, PolicyKind.RESOURCE)
        arn = f"arn:aws:s3:::{bucket}"
        if self.resources.get(BUCKET_POLICY, bucket) is None:
            self.resources.insert(BUCKET_POLICY, bucket, arn, "", {"Policy": text})
        else:
            self.resources.update(BUCKET_POLICY, bucket, lambda res: res.doc.__setitem__("Policy", text))
        self._changed(bucket)

    def text(self, bucket: str) -> str:
        found = self.resources.get(BUCKET_POLICY, bucket)
        if found is None:
            raise no_such_bucket_policy(bucket)
        return found.doc["Policy"]

    def delete(self, bucket: str) -> None:
        if self.resources.delete(BUCKET_POLICY, bucket):
            self._changed(bucket)

    def document(self, bucket: str) -> PolicyDocument | None:
        """The parsed policy of the bucket, or None; cached, since the serving path asks on every S3 call."""
        with self._lock:
            if bucket in self._parsed:
                return self._parsed[bucket]
            generation = self._generation
        document = read_bucket_policy(self.resources, bucket)
        with self._lock:
            if generation == self._generation:
                self._parsed[bucket] = document
        return document

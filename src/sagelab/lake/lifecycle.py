"""The lifecycle scheduler: applies every bucket's lifecycle rules to its objects, every `scan_seconds`.

Transitions change an object's storage class in place (an archive class then needs RestoreObject before
its bytes are read), expirations delete the current object (on a versioned bucket: write a delete marker),
noncurrent expirations remove old versions for good, and stale multipart uploads are aborted. A version is
noncurrent from the moment the next newer one was written. `day_seconds` is how long a rule's day lasts
(86400; tests make it short); dates are dates. These are not API calls: CloudTrail records none of them.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from itertools import groupby

from sagelab.errors import S3Error
from sagelab.lake.blobs import BlobStore
from sagelab.lake.lifecycle_rules import TRANSITION_CLASSES, LifecycleConfiguration, LifecycleRule
from sagelab.lake.multipart import MultipartUploads
from sagelab.lake.versions import VersionEntry

log = logging.getLogger(__name__)
LIFECYCLE = "lifecycle"


def _rank(storage_class: str) -> int:
    """How cold a class is: STANDARD (and any class no rule moves to) is the warmest."""
    return TRANSITION_CLASSES.index(storage_class) + 1 if storage_class in TRANSITION_CLASSES else 0


class LifecycleScheduler:
    def __init__(self, *, blobs: BlobStore, day_seconds: float, scan_seconds: float,
                 clock: Callable[[], float] = time.time):
        self.blobs = blobs
        self.uploads = MultipartUploads(blobs)
        self.day_seconds = day_seconds
        self.scan_seconds = scan_seconds
        self.clock = clock
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="s3-lifecycle", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        assert self._stop is not None
        while not self._stop.wait(self.scan_seconds):
            try:
                self.run_once()
            except Exception:  # a scan that fails is retried at the next one; the loop must live on
                log.exception("S3 lifecycle scan failed")

    def close(self) -> None:
        if self._stop is not None:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._stop = None

    # --- one scan ------------------------------------------------------------------------------------
    def run_once(self) -> None:
        now = self.clock()
        for bucket in self.blobs.list_buckets():
            try:
                doc = self.blobs.bucket_config(bucket.name, LIFECYCLE)
            except S3Error:
                continue  # deleted meanwhile
            if not doc:
                continue
            config = LifecycleConfiguration.from_doc(doc)  # type: ignore[arg-type]
            rules = [r for r in config.rules if r.enabled]
            if rules:
                self._apply(bucket.name, config, rules, now)

    def _apply(self, bucket: str, config: LifecycleConfiguration, rules: list[LifecycleRule], now: float) -> None:
        for key, group in groupby(self.blobs.list_versions(bucket), key=lambda e: e.info.key):
            try:
                self._apply_to_key(bucket, key, list(group), config, rules, now)
            except S3Error as error:  # the key changed under the scan: the next scan sees it as it is
                log.debug("lifecycle skipped s3://%s/%s: %s", bucket, key, error.code)
        for upload in self.uploads.uploads(bucket):
            for rule in rules:
                if (rule.abort_days is not None and upload.key.startswith(rule.prefix)
                        and now - upload.initiated >= rule.abort_days * self.day_seconds):
                    with contextlib.suppress(S3Error):
                        self.uploads.abort(upload.upload_id, upload.bucket, upload.key)
                    break

    def _apply_to_key(self, bucket: str, key: str, versions: list[VersionEntry], config: LifecycleConfiguration,
                      rules: list[LifecycleRule], now: float) -> None:
        latest = versions[0].info
        if latest.delete_marker:
            if len(versions) == 1 and any(r.expired_object_delete_marker and r.matches(key, {}, 0) for r in rules):
                self.blobs.delete(bucket, key, latest.version_id or "null")  # a marker with nothing left behind
                return
        else:
            self._apply_to_current(bucket, key, latest, config, rules, now)
        # Noncurrent versions, newest first: each became noncurrent when the one above it was written.
        noncurrent = list(zip(versions[1:], (v.info.last_modified for v in versions), strict=False))
        for position, (entry, since) in enumerate(noncurrent):
            info = entry.info
            age = (now - since) / self.day_seconds
            for rule in (r for r in rules if r.matches(key, info.tags, info.size)):
                newer_kept = rule.noncurrent_newer_versions or 0
                if (rule.noncurrent_expiration_days is not None and age >= rule.noncurrent_expiration_days
                        and position >= newer_kept):
                    self.blobs.delete(bucket, key, info.version_id or "null")
                    break
                if info.delete_marker:
                    continue
                target = self._coldest(((t.storage_class, t.days, t.newer_versions or 0)
                                        for t in rule.noncurrent_transitions), age, position)
                if (target and _rank(target) > _rank(info.storage_class)
                        and info.size >= config.minimum_transition_size(rule)):
                    self.blobs.set_storage_class(bucket, key, target, info.version_id or "null")

    def _apply_to_current(self, bucket: str, key: str, info, config: LifecycleConfiguration,
                          rules: list[LifecycleRule], now: float) -> None:
        age = (now - info.last_modified) / self.day_seconds
        matching = [r for r in rules if r.matches(key, info.tags, info.size)]
        for rule in matching:
            if ((rule.expiration_days is not None and age >= rule.expiration_days)
                    or (rule.expiration_date is not None and now >= rule.expiration_date)):
                self.blobs.delete(bucket, key)
                return
        target = None
        for rule in matching:
            if info.size < config.minimum_transition_size(rule):
                continue
            due = [t.storage_class for t in rule.transitions
                   if (t.days is not None and age >= t.days) or (t.date is not None and now >= t.date)]
            for storage_class in due:
                if target is None or _rank(storage_class) > _rank(target):
                    target = storage_class
        if target is not None and _rank(target) > _rank(info.storage_class):
            self.blobs.set_storage_class(bucket, key, target, info.version_id)

    @staticmethod
    def _coldest(transitions: Iterable[tuple[str, int, int]], age: float, position: int) -> str | None:
        due = [cls for cls, days, newer in transitions if age >= days and position >= newer]
        return max(due, key=_rank) if due else None

"""Trails: which events go to which bucket, and the delivery of their log files and signed digests.

A logging trail delivers, every `delivery_seconds`, the events recorded since its cursor that its event
selectors choose, as one gzipped `{"Records": [...]}` log file under AWS's key layout. With log file
validation on, every `digest_seconds` it also delivers a digest file listing each log file delivered since
the previous digest with the SHA-256 of its uncompressed content, chained to the previous digest by that
digest's hash and signature, and signed by the home's `DigestKey` (the signature in the object's metadata).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import gzip
import hashlib
import json
import re
import secrets
import string
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from sagelab.account import Account
from sagelab.cloudtrail.errors import (
    BucketDoesNotExist,
    InvalidEventSelectors,
    InvalidTrailName,
    TrailAlreadyExists,
    TrailNotFound,
)
from sagelab.cloudtrail.history import EventHistory
from sagelab.cloudtrail.records import iso
from sagelab.cloudtrail.signing import DigestKey, data_to_sign
from sagelab.errors import S3Error
from sagelab.lake.blobs import BlobStore
from sagelab.storage.resources import AlreadyExists, Resource, ResourceStore

TRAIL = "cloudtrail-trail"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,127}$")
DEFAULT_SELECTORS = [{"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": [],
                      "ExcludeManagementEventSources": []}]
_RANDOM = string.ascii_letters + string.digits


def _compact(epoch: float, seconds: bool) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ" if seconds else "%Y%m%dT%H%MZ", time.gmtime(epoch))


def selects(selectors: list[dict[str, Any]], record: dict[str, Any]) -> bool:
    """Whether a trail with these event selectors delivers this event."""
    for selector in selectors:
        kind = selector.get("ReadWriteType", "All")
        if kind == "ReadOnly" and not record["readOnly"] or kind == "WriteOnly" and record["readOnly"]:
            continue
        if record["managementEvent"]:
            if selector.get("IncludeManagementEvents", True) and record["eventSource"] not in selector.get(
                    "ExcludeManagementEventSources", []):
                return True
            continue
        arns = [r["ARN"] for r in record.get("resources") or []]
        for resource in selector.get("DataResources", []):
            if resource.get("Type") != "AWS::S3::Object":
                continue
            for value in resource.get("Values", []):
                if value in ("arn:aws:s3", "arn:aws:s3:::") or any(arn.startswith(value) for arn in arns):
                    return True
    return False


class TrailService:
    def __init__(self, *, resources: ResourceStore, account: Account, history: EventHistory, blobs: BlobStore,
                 key: DigestKey, delivery_seconds: float, digest_seconds: float,
                 clock: Callable[[], float] = time.time):
        self.resources = resources
        self.account = account
        self.history = history
        self.blobs = blobs
        self.key = key
        self.delivery_seconds = delivery_seconds
        self.digest_seconds = digest_seconds
        self.clock = clock
        self._data_events: bool | None = None
        self._lock = threading.Lock()
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    # --- trails -----------------------------------------------------------------------------------
    def _trail(self, name_or_arn: str) -> Resource:
        name = name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn
        found = self.resources.get(TRAIL, name)
        if found is None:
            raise TrailNotFound(f"Unknown trail: {self.account.arn('cloudtrail', 'trail/' + name)} for the user: "
                                f"{self.account.id}")
        return found

    def create(self, params: dict[str, Any], region: str) -> dict[str, Any]:
        name = params["Name"]
        if not _NAME_RE.match(name) or ".." in name:
            raise InvalidTrailName(f"Trail name {name!r} must be 3 to 128 letters, digits, '.', '_' or '-', "
                                   "starting with a letter or digit.")
        bucket = params["S3BucketName"]
        try:
            self.blobs.head_bucket(bucket)
        except S3Error:
            raise BucketDoesNotExist(f"S3 bucket {bucket} does not exist.") from None
        arn = self.account.arn("cloudtrail", f"trail/{name}", region)
        doc = {"Name": name, "S3BucketName": bucket, "IncludeGlobalServiceEvents":
               params.get("IncludeGlobalServiceEvents", True), "IsMultiRegionTrail": params.get("IsMultiRegionTrail",
                                                                                               False),
               "HomeRegion": region, "TrailARN": arn, "LogFileValidationEnabled":
               params.get("EnableLogFileValidation", False), "HasCustomEventSelectors": False,
               "HasInsightSelectors": False, "IsOrganizationTrail": False,
               "_status": {"IsLogging": False}, "_selectors": DEFAULT_SELECTORS, "_cursor": 0,
               "_digest": {"start": None, "pending": [], "previous": None}}
        if params.get("S3KeyPrefix"):
            doc["S3KeyPrefix"] = params["S3KeyPrefix"]
        try:
            self.resources.insert(TRAIL, name, arn, "", doc)
        except AlreadyExists:
            raise TrailAlreadyExists(f"Trail {name} already exists for customer: {self.account.id}") from None
        return self._public(doc, with_selectors=False)

    @staticmethod
    def _public(doc: dict[str, Any], *, with_selectors: bool = True) -> dict[str, Any]:
        public = {k: v for k, v in doc.items() if not k.startswith("_")}
        if not with_selectors:
            public.pop("HasCustomEventSelectors", None)
            public.pop("HasInsightSelectors", None)
            public.pop("HomeRegion", None)
        return public

    def get(self, name: str) -> dict[str, Any]:
        return self._public(self._trail(name).doc)

    def describe(self, names: list[str] | None) -> list[dict[str, Any]]:
        trails = sorted(self.resources.list(TRAIL), key=lambda r: r.name)
        if names:
            wanted = {n.rsplit("/", 1)[-1] if n.startswith("arn:") else n for n in names}
            trails = [t for t in trails if t.name in wanted]
        return [self._public(t.doc) for t in trails]

    def delete(self, name: str) -> None:
        self.resources.delete(TRAIL, self._trail(name).name)
        self._data_events = None

    def status(self, name: str) -> dict[str, Any]:
        return dict(self._trail(name).doc["_status"])

    def start_logging(self, name: str) -> None:
        found = self._trail(name)
        now = self.clock()
        cursor = self.history.last_id()

        def start(resource: Resource) -> None:
            status = resource.doc["_status"]
            if status.get("IsLogging"):
                return
            status.update(IsLogging=True, StartLoggingTime=now, TimeLoggingStarted=iso(now))
            resource.doc["_cursor"] = cursor
            resource.doc["_digest"]["start"] = now
        self.resources.update(TRAIL, found.name, start)
        self._data_events = None

    def stop_logging(self, name: str) -> None:
        found = self._trail(name)
        now = self.clock()

        def stop(resource: Resource) -> None:
            resource.doc["_status"].update(IsLogging=False, StopLoggingTime=now, TimeLoggingStopped=iso(now))
        self.resources.update(TRAIL, found.name, stop)
        self._data_events = None

    def put_selectors(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("AdvancedEventSelectors"):
            raise InvalidEventSelectors("sagelab's CloudTrail takes EventSelectors, not AdvancedEventSelectors.")
        selectors = params.get("EventSelectors")
        if not selectors or len(selectors) > 5:
            raise InvalidEventSelectors("EventSelectors must hold 1 to 5 selectors.")
        normalized = []
        for selector in selectors:
            kind = selector.get("ReadWriteType", "All")
            if kind not in ("ReadOnly", "WriteOnly", "All"):
                raise InvalidEventSelectors(f"ReadWriteType must be ReadOnly, WriteOnly or All, got {kind!r}.")
            for resource in selector.get("DataResources", []):
                if resource.get("Type") != "AWS::S3::Object":
                    raise InvalidEventSelectors(f"DataResources Type {resource.get('Type')!r}: sagelab records "
                                                "data events of AWS::S3::Object only.")
            normalized.append({"ReadWriteType": kind, "IncludeManagementEvents":
                               selector.get("IncludeManagementEvents", True),
                               "DataResources": selector.get("DataResources", []),
                               "ExcludeManagementEventSources": selector.get("ExcludeManagementEventSources", [])})
        found = self._trail(name)

        def put(resource: Resource) -> None:
            resource.doc["_selectors"] = normalized
            resource.doc["HasCustomEventSelectors"] = True
        self.resources.update(TRAIL, found.name, put)
        self._data_events = None
        return {"TrailARN": found.arn, "EventSelectors": normalized}

    def get_selectors(self, name: str) -> dict[str, Any]:
        found = self._trail(name)
        return {"TrailARN": found.arn, "EventSelectors": found.doc["_selectors"]}

    def wants_data_events(self) -> bool:
        """Whether any logging trail selects data events (only then are they recorded at all)."""
        if self._data_events is None:
            self._data_events = any(
                t.doc["_status"].get("IsLogging") and any(s.get("DataResources") for s in t.doc["_selectors"])
                for t in self.resources.list(TRAIL))
        return self._data_events

    def public_keys(self) -> list[dict[str, Any]]:
        # The PKCS #1 DER key, as a blob (base64 on the wire; the AWS CLI reads it without decoding blobs).
        return [{"Value": base64.b64encode(self.key.public_der).decode(),
                 "ValidityStartTime": self.key.created, "ValidityEndTime": self.key.created + 10 * 365 * 86400,
                 "Fingerprint": self.key.fingerprint}]

    # --- delivery ---------------------------------------------------------------------------------
    def _prefix(self, doc: dict[str, Any]) -> str:
        return f"{doc['S3KeyPrefix']}/" if doc.get("S3KeyPrefix") else ""

    def deliver(self) -> None:
        """One delivery round for every logging trail."""
        with self._lock:
            for listed in self.resources.list(TRAIL):
                if not listed.doc["_status"].get("IsLogging"):
                    continue
                # Servers sharing one database take turns: each round starts from the cursor the last one left.
                with self.resources.db.exclusive(f"cloudtrail.delivery:{listed.arn}") as mine:
                    trail = self.resources.get(TRAIL, listed.name) if mine else None
                    if trail is not None and trail.doc["_status"].get("IsLogging"):
                        self._deliver(trail)

    def _deliver(self, trail: Resource) -> None:
        doc = trail.doc
        now = self.clock()
        events = self.history.since(doc["_cursor"])
        cursor = events[-1][0] if events else doc["_cursor"]
        records = [record for _, record in events if selects(doc["_selectors"], record)]
        log_entry = self._write_log(doc, records, now) if records else None
        digest_state = copy.deepcopy(doc["_digest"])
        if log_entry is not None:
            digest_state["pending"].append(log_entry)
        digested = False
        if doc.get("LogFileValidationEnabled") and now - (digest_state["start"] or now) >= self.digest_seconds:
            digest_state = self._write_digest(doc, digest_state, now)
            digested = True

        def advance(resource: Resource) -> None:
            resource.doc["_cursor"] = max(resource.doc["_cursor"], cursor)
            resource.doc["_digest"] = digest_state
            status = resource.doc["_status"]
            if log_entry is not None:
                status.update(LatestDeliveryTime=now, LatestDeliveryAttemptTime=iso(now),
                              LatestDeliveryAttemptSucceeded=iso(now))
            if digested:
                status.update(LatestDigestDeliveryTime=now, LatestDigestDeliveryAttemptTime=iso(now),
                              LatestDigestDeliveryAttemptSucceeded=iso(now))
        self.resources.update(TRAIL, trail.name, advance)

    def _write_log(self, doc: dict[str, Any], records: list[dict[str, Any]], now: float) -> dict[str, Any]:
        region, account = doc["HomeRegion"], self.account.id
        random = "".join(secrets.choice(_RANDOM) for _ in range(16))
        key = (f"{self._prefix(doc)}AWSLogs/{account}/CloudTrail/{region}/{time.strftime('%Y/%m/%d', time.gmtime(now))}"
               f"/{account}_CloudTrail_{region}_{_compact(now, False)}_{random}.json.gz")
        content = json.dumps({"Records": records}, separators=(",", ":")).encode()
        self.blobs.put(doc["S3BucketName"], key, [gzip.compress(content, mtime=0)], content_type="application/json")
        times = [r["eventTime"] for r in records]
        return {"s3Bucket": doc["S3BucketName"], "s3Object": key, "hashValue": hashlib.sha256(content).hexdigest(),
                "hashAlgorithm": "SHA-256", "newestEventTime": max(times), "oldestEventTime": min(times)}

    def _write_digest(self, doc: dict[str, Any], state: dict[str, Any], now: float) -> dict[str, Any]:
        region, account, bucket = doc["HomeRegion"], self.account.id, doc["S3BucketName"]
        key = (f"{self._prefix(doc)}AWSLogs/{account}/CloudTrail-Digest/{region}/"
               f"{time.strftime('%Y/%m/%d', time.gmtime(now))}/{account}_CloudTrail-Digest_{region}_{doc['Name']}_"
               f"{region}_{_compact(now, True)}.json.gz")
        logs = state["pending"]
        previous = state["previous"] or {}
        digest = {
            "awsAccountId": account, "digestStartTime": iso(state["start"]), "digestEndTime": iso(now),
            "digestS3Bucket": bucket, "digestS3Object": key,
            "digestPublicKeyFingerprint": self.key.fingerprint, "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": max((f["newestEventTime"] for f in logs), default=None),
            "oldestEventTime": min((f["oldestEventTime"] for f in logs), default=None),
            "previousDigestS3Bucket": previous.get("bucket"), "previousDigestS3Object": previous.get("key"),
            "previousDigestHashValue": previous.get("hash"),
            "previousDigestHashAlgorithm": "SHA-256" if previous else None,
            "previousDigestSignature": previous.get("signature"),
            "logFiles": logs,
        }
        content = json.dumps(digest, separators=(",", ":")).encode()
        signature = self.key.sign(data_to_sign(digest, content))
        self.blobs.put(bucket, key, [gzip.compress(content, mtime=0)], content_type="application/json",
                       metadata={"signature": signature, "signature-algorithm": "SHA256withRSA"})
        return {"start": now, "pending": [], "previous": {
            "bucket": bucket, "key": key, "hash": hashlib.sha256(content).hexdigest(), "signature": signature}}

    # --- the delivery thread ----------------------------------------------------------------------
    def start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cloudtrail-delivery", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._stop is not None
        while not self._stop.wait(self.delivery_seconds):
            try:
                self.deliver()
            except Exception as exc:  # noqa: BLE001 - a failed round is retried at the next one
                print(f"cloudtrail: delivery failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    def close(self) -> None:
        """Stop the thread after one last round, so what was recorded before shutdown is delivered."""
        if self._stop is not None:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=30)
            self._stop = None
            # Shutting down: a round that fails here is delivered by the next start, from the cursor.
            with contextlib.suppress(Exception):
                self.deliver()

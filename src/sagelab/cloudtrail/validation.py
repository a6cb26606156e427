"""`validate-logs`: walk a trail's digest chain and check every digest and log file it lists.

The checks and the wording are those of `aws cloudtrail validate-logs`: each digest must be where it says
it is, be signed by a published key over CloudTrail's data-to-sign string, and (beyond the AWS CLI) hash to
the `previousDigestHashValue` the next digest recorded for it; each log file must exist and its
uncompressed content hash to the value its digest lists. A digest that fails is reported and the walk goes
on with the next older digest in the bucket, so one bad file does not hide the others.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import json
import re
import zlib
from collections.abc import Callable
from typing import Any, Protocol

from sagelab.cloudtrail.signing import data_to_sign, verify

DISPLAY = "%Y-%m-%dT%H:%M:%SZ"
_ARN = re.compile(r"^arn:[^:]+:cloudtrail:(?P<region>[^:]+):(?P<account>\d{12}):trail/(?P<name>.+)$")


class DigestSource(Protocol):
    """Where the trail, its public keys and its files are read from: a server's APIs, or a home directly."""

    def trail(self, arn: str) -> dict[str, Any]: ...
    def public_keys(self) -> dict[str, bytes]: ...
    def keys(self, bucket: str, prefix: str) -> list[str]: ...
    def get(self, bucket: str, key: str) -> tuple[bytes, dict[str, str]] | None: ...


@dataclasses.dataclass
class Report:
    valid_digests: int = 0
    invalid_digests: int = 0
    valid_logs: int = 0
    invalid_logs: int = 0
    found_start: dt.datetime | None = None
    found_end: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        return not self.invalid_digests and not self.invalid_logs


def parse_time(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.strip().replace(" ", "T"))
    except ValueError:
        raise ValueError(f"Unable to parse date value: {text}") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, DISPLAY).replace(tzinfo=dt.UTC)


def _key_time(key: str) -> str:
    return key[-24:-8]  # ..._<YYYYMMDDTHHMMSSZ>.json.gz


class Validator:
    def __init__(self, source: DigestSource, *, out: Callable[[str], None], err: Callable[[str], None],
                 verbose: bool = False):
        self.source = source
        self.out = out
        self.err = err
        self.verbose = verbose
        self.report = Report()

    def run(self, trail_arn: str, start: dt.datetime, end: dt.datetime) -> Report:
        match = _ARN.match(trail_arn)
        if not match:
            raise ValueError(f"Invalid trail ARN provided: {trail_arn}")
        if start > end:
            raise ValueError("Invalid time range specified: start-time must occur before end-time")
        trail = self.source.trail(trail_arn)
        bucket, prefix = trail["S3BucketName"], trail.get("S3KeyPrefix")
        region, account, name = match["region"], match["account"], match["name"]
        self.out(f"Validating log files for trail {trail_arn} between {start.strftime(DISPLAY)} and "
                 f"{end.strftime(DISPLAY)}\n")
        folder = f"{prefix + '/' if prefix else ''}AWSLogs/{account}/CloudTrail-Digest/{region}/"
        pattern = re.compile(re.escape(folder) + r"\d+/\d+/\d+/" + re.escape(
            f"{account}_CloudTrail-Digest_{region}_{name}_{region}_") + r"\d{8}T\d{6}Z\.json\.gz$")
        low, high = start.strftime("%Y%m%dT%H%M%SZ"), (end + dt.timedelta(hours=1)).strftime("%Y%m%dT%H%M%SZ")
        candidates = sorted((k for k in self.source.keys(bucket, folder) if pattern.match(k)
                             and low <= _key_time(k) <= high), key=_key_time)
        self._walk(bucket, candidates, start, end, self.source.public_keys())
        self._summary(start, end)
        return self.report

    # --- the chain --------------------------------------------------------------------------------
    def _walk(self, bucket: str, candidates: list[str], start: dt.datetime, end: dt.datetime,
              public_keys: dict[str, bytes]) -> None:
        key = candidates.pop() if candidates else None
        expected_hash: str | None = None  # what the newer digest recorded for the one being read
        while key is not None:
            digest = self._digest(bucket, key, public_keys, expected_hash)
            if digest is None:
                key, expected_hash = self._older(candidates, key), None
                continue
            digest_start = _time(digest["digestStartTime"])
            if digest_start < start and _time(digest["digestEndTime"]) < start:
                break
            self._found(digest_start, _time(digest["digestEndTime"]), start, end)
            self.report.valid_digests += 1
            self._status(f"Digest file\ts3://{bucket}/{key}\tvalid")
            for log in digest.get("logFiles") or []:
                self._log(log)
            if digest_start <= start:
                break
            previous = digest.get("previousDigestS3Object")
            if previous and digest.get("previousDigestS3Bucket") == bucket:
                if previous in candidates:
                    candidates.remove(previous)
                key, expected_hash = previous, digest.get("previousDigestHashValue")
            else:
                key, expected_hash = self._older(candidates, key), None

    @staticmethod
    def _older(candidates: list[str], key: str) -> str | None:
        while candidates:
            older = candidates.pop()
            if _key_time(older) < _key_time(key):
                return older
        return None

    def _digest(self, bucket: str, key: str, public_keys: dict[str, bytes],
                expected_hash: str | None) -> dict[str, Any] | None:
        where = f"Digest file\ts3://{bucket}/{key}\tINVALID"
        found = self.source.get(bucket, key)
        if found is None:
            return self._bad_digest(f"{where}: not found")
        body, metadata = found
        try:
            inflated = zlib.decompress(body, zlib.MAX_WBITS | 16)
            digest = json.loads(inflated)
        except (zlib.error, ValueError):
            return self._bad_digest(f"{where}: invalid format")
        required = ("digestPublicKeyFingerprint", "digestS3Bucket", "digestS3Object", "previousDigestSignature",
                    "digestEndTime", "digestStartTime")
        if not isinstance(digest, dict) or any(name not in digest for name in required):
            return self._bad_digest(f"{where}: invalid format")
        if digest["digestS3Bucket"] != bucket or digest["digestS3Object"] != key:
            return self._bad_digest(f"{where}: has been moved from its original location")
        if expected_hash is not None and hashlib.sha256(inflated).hexdigest() != expected_hash:
            return self._bad_digest(f"{where}: hash value doesn't match")
        public_key = public_keys.get(digest["digestPublicKeyFingerprint"])
        if public_key is None:
            return self._bad_digest(f"{where}: public key not found for fingerprint "
                                    f"{digest['digestPublicKeyFingerprint']}")
        signature = metadata.get("signature")
        if not signature or not verify(public_key, signature, data_to_sign(digest, inflated)):
            return self._bad_digest(f"{where}: signature verification failed")
        return digest

    def _bad_digest(self, message: str) -> None:
        self.report.invalid_digests += 1
        self._status(message, error=True)
        return None

    def _log(self, log: dict[str, Any]) -> None:
        where = f"Log file\ts3://{log['s3Bucket']}/{log['s3Object']}"
        found = self.source.get(log["s3Bucket"], log["s3Object"])
        if found is None:
            self._bad_log(f"{where}\tINVALID: not found")
            return
        try:
            content = gzip.decompress(found[0])
        except (OSError, EOFError, zlib.error):
            self._bad_log(f"{where}\tINVALID: invalid format")
            return
        if hashlib.sha256(content).hexdigest() != log.get("hashValue"):
            self._bad_log(f"{where}\tINVALID: hash value doesn't match")
            return
        self.report.valid_logs += 1
        self._status(f"{where}\tvalid")

    def _bad_log(self, message: str) -> None:
        self.report.invalid_logs += 1
        self._status(message, error=True)

    # --- output -----------------------------------------------------------------------------------
    def _found(self, digest_start: dt.datetime, digest_end: dt.datetime, start: dt.datetime,
               end: dt.datetime) -> None:
        first, last = max(digest_start, start), min(digest_end, end)
        report = self.report
        report.found_start = first if report.found_start is None else min(report.found_start, first)
        report.found_end = last if report.found_end is None else max(report.found_end, last)

    def _status(self, message: str, *, error: bool = False) -> None:
        if error:
            self.err(f"\n{message}\n")
        elif self.verbose:
            self.out(message)

    def _summary(self, start: dt.datetime, end: dt.datetime) -> None:
        report = self.report
        lines = [f"\nResults requested for {start.strftime(DISPLAY)} to {end.strftime(DISPLAY)}"]
        if not report.valid_digests and not report.invalid_digests:
            self.out("\n".join([*lines, "No digests found"]))
            return
        if report.found_start is None or report.found_end is None:
            lines.append("No valid digests found in range")
        else:
            lines.append(f"Results found for {report.found_start.strftime(DISPLAY)} to "
                         f"{report.found_end.strftime(DISPLAY)}:")
        for valid, invalid, name in ((report.valid_digests, report.invalid_digests, "digest"),
                                     (report.valid_logs, report.invalid_logs, "log")):
            total = valid + invalid
            if total:
                line = f"\n{valid}/{total} {name} files valid"
                lines.append(line + (f", {invalid}/{total} {name} files INVALID" if invalid else ""))
        self.out("\n".join(lines) + "\n")


# --- sources --------------------------------------------------------------------------------------
class ServerSource:
    """A sagelab server (or AWS) through boto3 clients for CloudTrail and S3."""

    def __init__(self, cloudtrail: Any, s3: Any):
        self.cloudtrail = cloudtrail
        self.s3 = s3

    def trail(self, arn: str) -> dict[str, Any]:
        for trail in self.cloudtrail.describe_trails()["trailList"]:
            if trail.get("TrailARN") == arn:
                return trail
        raise ValueError(f"A trail could not be found for {arn}")

    def public_keys(self) -> dict[str, bytes]:
        keys = self.cloudtrail.list_public_keys()["PublicKeyList"]
        return {k["Fingerprint"]: k["Value"] for k in keys}

    def keys(self, bucket: str, prefix: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def get(self, bucket: str, key: str) -> tuple[bytes, dict[str, str]] | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        return answer["Body"].read(), answer.get("Metadata", {})


class HomeSource:
    """A home's trails and lake opened directly: the server need not run."""

    def __init__(self, trails: Any, blobs: Any):
        self.trails = trails
        self.blobs = blobs

    def trail(self, arn: str) -> dict[str, Any]:
        for trail in self.trails.describe(None):
            if trail["TrailARN"] == arn:
                return trail
        raise ValueError(f"A trail could not be found for {arn}")

    def public_keys(self) -> dict[str, bytes]:
        return {self.trails.key.fingerprint: self.trails.key.public_der}

    def keys(self, bucket: str, prefix: str) -> list[str]:
        return [info.key for info in self.blobs.list(bucket, prefix)]

    def get(self, bucket: str, key: str) -> tuple[bytes, dict[str, str]] | None:
        from sagelab.errors import S3Error

        try:
            info = self.blobs.head(bucket, key)
            return b"".join(self.blobs.read(bucket, key)), dict(info.metadata)
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                return None
            raise

"""Trails deliver log files and signed digests to S3; `sagelab validate-logs` checks them and finds tampering.

One server with fast delivery (every 0.3 s) and fast digests (every second), so nothing waits an hour.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import unique

from sagelab.embedded import ServerProcess

FAST = {"SAGELAB_CLOUDTRAIL_DELIVERY_SECONDS": "0.3", "SAGELAB_CLOUDTRAIL_DIGEST_SECONDS": "1"}


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("trail-home"), env=FAST).start()
    yield proc
    proc.stop()


def _digests(s3, bucket: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="AWSLogs/").get("Contents", [])
    return sorted((o["Key"] for o in listed if "/CloudTrail-Digest/" in o["Key"]), key=lambda k: k[-24:-8])


def _logs(s3, bucket: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="AWSLogs/").get("Contents", [])
    return [o["Key"] for o in listed if "/CloudTrail/" in o["Key"]]


def _digest(s3, bucket: str, key: str) -> dict:
    return json.loads(gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))


def _digested_log(s3, bucket: str) -> str:
    """A log file some digest lists: log names carry only the minute, so the first listed may be one the
    last round delivered after the final digest, which validation never sees."""
    for key in _digests(s3, bucket):
        if listed := _digest(s3, bucket, key)["logFiles"]:
            return listed[0]["s3Object"]
    raise AssertionError("no digest lists a log file")


def _trail_with_files(fast, *, digests_with_logs: int = 2) -> dict:
    """A logging trail with validation on, calls made until `digests_with_logs` digests list log files."""
    s3, cloudtrail, sm = fast.client("s3"), fast.client("cloudtrail"), fast.client("sagemaker")
    bucket, name = unique("trail-bucket"), unique("trail")
    s3.create_bucket(Bucket=bucket)
    created = cloudtrail.create_trail(Name=name, S3BucketName=bucket, EnableLogFileValidation=True)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    cloudtrail.start_logging(Name=name)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sm.list_training_jobs()
        with_logs = [k for k in _digests(s3, bucket) if _digest(s3, bucket, k)["logFiles"]]
        if len(with_logs) >= digests_with_logs:
            break
        time.sleep(0.4)
    else:
        raise TimeoutError("the trail delivered too few digests")
    cloudtrail.stop_logging(Name=name)
    time.sleep(0.7)  # the round under way finishes
    return {"bucket": bucket, "name": name, "arn": created["TrailARN"], "start": started}


def _validate(fast, trail: dict, *, via: str = "endpoint") -> subprocess.CompletedProcess[str]:
    akid, secret = fast.credentials()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": akid, "AWS_SECRET_ACCESS_KEY": secret,
           "AWS_DEFAULT_REGION": "us-east-1"}
    where = ["--endpoint-url", fast.url] if via == "endpoint" else ["--home", str(fast.home)]
    return subprocess.run(
        [sys.executable, "-m", "sagelab", "validate-logs", "--trail-arn", trail["arn"], "--start-time",
         trail["start"].strftime("%Y-%m-%dT%H:%M:%SZ"), *where], capture_output=True, text=True, env=env,
        timeout=120)


def test_a_logging_trail_delivers_log_files_and_chained_signed_digests(fast):
    trail = _trail_with_files(fast)
    s3, cloudtrail = fast.client("s3"), fast.client("cloudtrail")
    bucket = trail["bucket"]
    account = trail["arn"].split(":")[4]
    status = cloudtrail.get_trail_status(Name=trail["name"])
    assert status["IsLogging"] is False and "LatestDeliveryTime" in status and "LatestDigestDeliveryTime" in status
    logs = _logs(s3, bucket)
    assert logs and all(k.startswith(f"AWSLogs/{account}/CloudTrail/us-east-1/") for k in logs)
    assert all(Path(k).name.startswith(f"{account}_CloudTrail_us-east-1_") and k.endswith(".json.gz") for k in logs)
    records = [r for k in logs for r in json.loads(gzip.decompress(
        s3.get_object(Bucket=bucket, Key=k)["Body"].read()))["Records"]]
    assert "ListTrainingJobs" in {r["eventName"] for r in records}
    assert "StartLogging" in {r["eventName"] for r in records}  # recorded once its answer is ready, as in AWS
    digests = _digests(s3, bucket)
    assert all(f"_CloudTrail-Digest_us-east-1_{trail['name']}_us-east-1_" in k for k in digests)
    first, second = _digest(s3, bucket, digests[0]), _digest(s3, bucket, digests[1])
    assert first["previousDigestSignature"] is None and first["digestSignatureAlgorithm"] == "SHA256withRSA"
    assert second["previousDigestS3Object"] == digests[0]
    head = s3.head_object(Bucket=bucket, Key=digests[1])
    assert second["previousDigestSignature"] == s3.head_object(Bucket=bucket, Key=digests[0])["Metadata"]["signature"]
    assert head["Metadata"]["signature-algorithm"] == "SHA256withRSA"
    keys = cloudtrail.list_public_keys()["PublicKeyList"]
    assert [k["Fingerprint"] for k in keys] == [second["digestPublicKeyFingerprint"]]
    assert cloudtrail.get_event_selectors(TrailName=trail["name"])["EventSelectors"][0]["ReadWriteType"] == "All"
    assert [t["Name"] for t in cloudtrail.describe_trails(trailNameList=[trail["arn"]])["trailList"]] == [
        trail["name"]]


@pytest.mark.parametrize("via", ["endpoint", "home"])
def test_validate_logs_passes_on_an_untouched_trail(fast, via):
    trail = _trail_with_files(fast)
    result = _validate(fast, trail, via=via)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Validating log files for trail {trail['arn']}" in result.stdout
    assert "Results requested for" in result.stdout and "INVALID" not in result.stdout + result.stderr
    digests = len(_digests(fast.client("s3"), trail["bucket"]))
    assert f"{digests}/{digests} digest files valid" in result.stdout
    assert "log files valid" in result.stdout


def test_validate_logs_finds_a_changed_log_file(fast):
    trail = _trail_with_files(fast)
    s3 = fast.client("s3")
    key = _digested_log(s3, trail["bucket"])
    original = json.loads(gzip.decompress(s3.get_object(Bucket=trail["bucket"], Key=key)["Body"].read()))
    original["Records"][0]["eventName"] = "NothingHappened"
    s3.put_object(Bucket=trail["bucket"], Key=key, Body=gzip.compress(json.dumps(original).encode()))
    result = _validate(fast, trail)
    assert result.returncode == 1
    assert f"Log file\ts3://{trail['bucket']}/{key}\tINVALID: hash value doesn't match" in result.stderr
    assert "log files INVALID" in result.stdout


def test_validate_logs_finds_a_deleted_log_file(fast):
    trail = _trail_with_files(fast)
    s3 = fast.client("s3")
    key = _digested_log(s3, trail["bucket"])
    s3.delete_object(Bucket=trail["bucket"], Key=key)
    result = _validate(fast, trail)
    assert result.returncode == 1
    assert f"Log file\ts3://{trail['bucket']}/{key}\tINVALID: not found" in result.stderr


def test_validate_logs_finds_a_changed_digest(fast):
    trail = _trail_with_files(fast)
    s3 = fast.client("s3")
    key = _digests(s3, trail["bucket"])[-1]
    stored = s3.get_object(Bucket=trail["bucket"], Key=key)
    original = stored["Body"].read()
    digest = json.loads(gzip.decompress(original))
    digest["logFiles"] = []  # hide the log files it listed
    s3.put_object(Bucket=trail["bucket"], Key=key, Body=gzip.compress(json.dumps(digest).encode()),
                  Metadata=stored["Metadata"])
    result = _validate(fast, trail)
    assert result.returncode == 1
    assert f"Digest file\ts3://{trail['bucket']}/{key}\tINVALID: signature verification failed" in result.stderr
    # An older digest changed: the newer digest's hash of it no longer matches.
    s3.put_object(Bucket=trail["bucket"], Key=key, Body=original, Metadata=stored["Metadata"])
    older = _digests(s3, trail["bucket"])[-2]
    stored = s3.get_object(Bucket=trail["bucket"], Key=older)
    digest = json.loads(gzip.decompress(stored["Body"].read()))
    digest["logFiles"] = []
    s3.put_object(Bucket=trail["bucket"], Key=older, Body=gzip.compress(json.dumps(digest).encode()),
                  Metadata=stored["Metadata"])
    result = _validate(fast, trail)
    assert f"Digest file\ts3://{trail['bucket']}/{older}\tINVALID: hash value doesn't match" in result.stderr


def test_validate_logs_finds_reordered_and_removed_digests(fast):
    trail = _trail_with_files(fast, digests_with_logs=3)
    s3 = fast.client("s3")
    bucket = trail["bucket"]
    digests = _digests(s3, bucket)
    older, newer = digests[-3], digests[-2]
    a, b = (s3.get_object(Bucket=bucket, Key=k) for k in (older, newer))
    a_body, b_body = a["Body"].read(), b["Body"].read()
    s3.put_object(Bucket=bucket, Key=older, Body=b_body, Metadata=b["Metadata"])
    s3.put_object(Bucket=bucket, Key=newer, Body=a_body, Metadata=a["Metadata"])
    result = _validate(fast, trail)
    assert result.returncode == 1
    assert f"Digest file\ts3://{bucket}/{newer}\tINVALID: has been moved from its original location" in result.stderr
    s3.put_object(Bucket=bucket, Key=older, Body=a_body, Metadata=a["Metadata"])
    s3.put_object(Bucket=bucket, Key=newer, Body=b_body, Metadata=b["Metadata"])
    assert _validate(fast, trail).returncode == 0
    s3.delete_object(Bucket=bucket, Key=newer)
    result = _validate(fast, trail)
    assert result.returncode == 1
    assert f"Digest file\ts3://{bucket}/{newer}\tINVALID: not found" in result.stderr


def test_the_event_history_survives_a_restart(fast, tmp_path):
    cloudtrail = fast.client("cloudtrail")
    fast.client("s3").create_bucket(Bucket=unique("before-restart"))
    before = cloudtrail.lookup_events(MaxResults=5)["Events"]
    fast.kill()  # as a crash would: what was answered was already committed
    fast.start()
    after = fast.client("cloudtrail").lookup_events(LookupAttributes=[
        {"AttributeKey": "EventId", "AttributeValue": before[0]["EventId"]}])["Events"]
    assert [e["EventId"] for e in after] == [before[0]["EventId"]]


def test_the_aws_clis_own_validate_logs_accepts_sagelabs_trail(fast):
    trail = _trail_with_files(fast)
    akid, secret = fast.credentials()
    # The AWS CLI's validate-logs sends only CloudTrail to --endpoint-url; S3 is found by its own variable.
    env = {**os.environ, "AWS_ACCESS_KEY_ID": akid, "AWS_SECRET_ACCESS_KEY": secret,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL_S3": fast.url}
    result = subprocess.run(
        [sys.executable, "-m", "awscli", "cloudtrail", "validate-logs", "--endpoint-url", fast.url, "--trail-arn",
         trail["arn"], "--start-time", trail["start"].strftime("%Y-%m-%dT%H:%M:%SZ")],
        capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "digest files valid" in result.stdout and "INVALID" not in result.stdout + result.stderr


def test_data_events_are_delivered_only_to_trails_that_select_them_and_never_looked_up(fast):
    s3, cloudtrail = fast.client("s3"), fast.client("cloudtrail")
    logs_bucket, data_bucket, name = unique("data-logs"), unique("data-objects"), unique("data-trail")
    for bucket in (logs_bucket, data_bucket):
        s3.create_bucket(Bucket=bucket)
    cloudtrail.create_trail(Name=name, S3BucketName=logs_bucket)
    selectors = cloudtrail.put_event_selectors(TrailName=name, EventSelectors=[{
        "ReadWriteType": "WriteOnly", "IncludeManagementEvents": False,
        "DataResources": [{"Type": "AWS::S3::Object", "Values": [f"arn:aws:s3:::{data_bucket}/"]}]}])
    assert selectors["EventSelectors"][0]["DataResources"][0]["Values"] == [f"arn:aws:s3:::{data_bucket}/"]
    cloudtrail.start_logging(Name=name)
    s3.put_object(Bucket=data_bucket, Key="watched.csv", Body=b"a")
    s3.get_object(Bucket=data_bucket, Key="watched.csv")  # a read: WriteOnly leaves it out
    s3.put_object(Bucket=logs_bucket, Key="elsewhere.csv", Body=b"a")  # another bucket: not selected
    deadline = time.monotonic() + 30
    records: list[dict] = []
    while time.monotonic() < deadline and not records:
        time.sleep(0.3)
        records = [r for k in _logs(s3, logs_bucket) for r in json.loads(gzip.decompress(
            s3.get_object(Bucket=logs_bucket, Key=k)["Body"].read()))["Records"]]
    cloudtrail.stop_logging(Name=name)
    assert [(r["eventName"], r["requestParameters"]["key"]) for r in records] == [("PutObject", "watched.csv")]
    assert records[0]["managementEvent"] is False and records[0]["eventCategory"] == "Data"
    assert records[0]["resources"] == [{"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{data_bucket}/watched.csv"}]
    looked_up = cloudtrail.lookup_events(LookupAttributes=[{"AttributeKey": "EventName",
                                                            "AttributeValue": "PutObject"}])["Events"]
    assert looked_up == []

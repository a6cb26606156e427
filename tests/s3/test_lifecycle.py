"""S3 lifecycle rules: validated as S3 validates them, and applied by the scheduler with a day made short.

The server here has a lifecycle day of 0.02 s and scans every 0.1 s, so "30 days" pass in well under a
second; the tests wait for each outcome rather than for a time.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import botocore.exceptions
import pytest
from helpers import client_env

from sagelab.embedded import ServerProcess

DAY_SECONDS = 0.02


@pytest.fixture(scope="module")
def lc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("lifecycle-home"), env={
        "SAGELAB_LIFECYCLE_DAY_SECONDS": str(DAY_SECONDS), "SAGELAB_LIFECYCLE_SCAN_SECONDS": "0.1"}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def lc(lc_server):
    return lc_server.client("s3")


@pytest.fixture
def bkt(lc) -> str:
    name = f"lc-{uuid.uuid4().hex[:12]}"
    lc.create_bucket(Bucket=name)
    return name


def error_of(call) -> tuple[int, str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    response = raised.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def eventually(check: Callable[[], object], timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "the lifecycle scheduler did not act in time"
        time.sleep(0.1)


def put_rules(s3, bucket: str, *rules: dict, **kwargs):
    return s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": list(rules)},
                                                 **kwargs)


# --- the configuration --------------------------------------------------------------------------------
def test_a_configuration_is_given_back_as_it_was_put(lc, bkt):
    assert error_of(lambda: lc.get_bucket_lifecycle_configuration(Bucket=bkt))[:2] == (
        404, "NoSuchLifecycleConfiguration")
    rules = [
        {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
         "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 90, "StorageClass": "GLACIER"}],
         "Expiration": {"Days": 365},
         "NoncurrentVersionTransitions": [{"NoncurrentDays": 30, "StorageClass": "GLACIER_IR"}],
         "NoncurrentVersionExpiration": {"NoncurrentDays": 60, "NewerNoncurrentVersions": 2},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
        {"ID": "tagged", "Status": "Disabled", "Filter": {"And": {
            "Prefix": "data/", "Tags": [{"Key": "tier", "Value": "cold"}], "ObjectSizeGreaterThan": 10}},
         "Transitions": [{"Date": dt.datetime(2030, 1, 1, tzinfo=dt.UTC), "StorageClass": "DEEP_ARCHIVE"}]},
        {"ID": "markers", "Status": "Enabled", "Filter": {}, "Expiration": {"ExpiredObjectDeleteMarker": True}},
    ]
    put = put_rules(lc, bkt, *rules)
    assert put["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"
    got = lc.get_bucket_lifecycle_configuration(Bucket=bkt)
    assert got["Rules"] == rules
    lc.delete_bucket_lifecycle(Bucket=bkt)
    assert error_of(lambda: lc.get_bucket_lifecycle_configuration(Bucket=bkt))[1] == "NoSuchLifecycleConfiguration"


@pytest.mark.parametrize(("rule", "message"), [
    ({"Transitions": [{"Days": 10, "StorageClass": "STANDARD_IA"}]},
     "'Days' in Transition action must be greater than or equal to 30 for storageClass 'STANDARD_IA'"),
    ({"Transitions": [{"Days": 30, "StorageClass": "GLACIER"}, {"Days": 60, "StorageClass": "STANDARD_IA"}]},
     "'StorageClass' 'STANDARD_IA' in the Transition action for filter (prefix=) cannot follow 'GLACIER'"),
    ({"Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 40, "StorageClass": "GLACIER"}]},
     "must be 30 days more than"),
    ({"Transitions": [{"Days": 60, "StorageClass": "GLACIER"}], "Expiration": {"Days": 30}},
     "'Days' in the Expiration action for filter (prefix=) must be greater than 'Days' in the Transition action"),
    ({"Expiration": {"Days": 0}}, "'Days' for Expiration action must be a positive integer"),
    ({"NoncurrentVersionTransitions": [{"NoncurrentDays": 5, "StorageClass": "ONEZONE_IA"}]},
     "'NoncurrentDays' in NoncurrentVersionTransition action must be greater than or equal to 30 for "
     "storageClass 'ONEZONE_IA'"),
    ({"Expiration": {"Date": dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)}}, "'Date' must be at midnight GMT"),
    ({}, "At least one action needs to be specified in a rule"),
])
def test_a_rule_s3_refuses_is_refused_with_its_message(lc, bkt, rule, message):
    status, code, text = error_of(lambda: put_rules(lc, bkt, {"ID": "r", "Status": "Enabled", "Filter": {},
                                                              **rule}))
    assert (status, code) == (400, "InvalidArgument")
    assert message in text


def test_malformed_and_duplicate_rules_are_refused(lc, bkt):
    assert error_of(lambda: put_rules(lc, bkt, {"ID": "r", "Status": "Maybe", "Filter": {},
                                                "Expiration": {"Days": 1}}))[:2] == (400, "MalformedXML")
    assert error_of(lambda: put_rules(lc, bkt, {"ID": "r", "Status": "Enabled", "Filter": {},
                                                "Transitions": [{"Days": 1, "StorageClass": "STANDARD"}]}))[:2] == (
        400, "MalformedXML")
    same = {"ID": "twice", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}
    assert error_of(lambda: put_rules(lc, bkt, same, same)) == (
        400, "InvalidArgument", "Rule ID must be unique. Found same ID for more than one rule")
    assert error_of(lambda: lc.get_bucket_lifecycle_configuration(Bucket=bkt))[1] == "NoSuchLifecycleConfiguration"


# --- the scheduler ------------------------------------------------------------------------------------
def storage_class(s3, bucket: str, key: str) -> str:
    return s3.head_object(Bucket=bucket, Key=key).get("StorageClass", "STANDARD")


def gone(s3, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"] == "404"
    return False


def test_objects_are_transitioned_to_an_archive_then_expired(lc, bkt):
    put_rules(lc, bkt,
              {"ID": "archive", "Status": "Enabled", "Filter": {"Prefix": "cold/"},
               "Transitions": [{"Days": 30, "StorageClass": "STANDARD_IA"}, {"Days": 60, "StorageClass": "GLACIER"}]},
              {"ID": "short", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
               "Transitions": [{"Days": 0, "StorageClass": "GLACIER_IR"}], "Expiration": {"Days": 150}},
              TransitionDefaultMinimumObjectSize="varies_by_storage_class")
    lc.put_object(Bucket=bkt, Key="cold/a", Body=b"frozen")
    lc.put_object(Bucket=bkt, Key="tmp/b", Body=b"brief")
    lc.put_object(Bucket=bkt, Key="other", Body=b"kept")
    eventually(lambda: storage_class(lc, bkt, "cold/a") == "GLACIER")
    assert error_of(lambda: lc.get_object(Bucket=bkt, Key="cold/a"))[:2] == (403, "InvalidObjectState")
    lc.restore_object(Bucket=bkt, Key="cold/a", RestoreRequest={"Days": 1})
    assert lc.get_object(Bucket=bkt, Key="cold/a")["Body"].read() == b"frozen"
    eventually(lambda: gone(lc, bkt, "tmp/b") or storage_class(lc, bkt, "tmp/b") == "GLACIER_IR")
    eventually(lambda: gone(lc, bkt, "tmp/b"))
    assert storage_class(lc, bkt, "other") == "STANDARD"


def test_small_objects_stay_put_by_default_unless_a_size_filter_says(lc, bkt):
    put_rules(lc, bkt, {"ID": "small", "Status": "Enabled", "Filter": {"ObjectSizeGreaterThan": 1},
                        "Transitions": [{"Days": 0, "StorageClass": "GLACIER_IR"}]},
              {"ID": "default", "Status": "Enabled", "Filter": {"Prefix": "big/"},
               "Transitions": [{"Days": 0, "StorageClass": "INTELLIGENT_TIERING"}]})
    lc.put_object(Bucket=bkt, Key="small", Body=b"tiny")
    eventually(lambda: storage_class(lc, bkt, "small") == "GLACIER_IR")
    lc.put_object(Bucket=bkt, Key="big/k", Body=b"x" * (128 * 1024 + 1))
    lc.put_object(Bucket=bkt, Key="big/tiny", Body=b"")  # neither the default minimum nor the size filter admit it
    eventually(lambda: storage_class(lc, bkt, "big/k") in ("INTELLIGENT_TIERING", "GLACIER_IR"))
    assert storage_class(lc, bkt, "big/tiny") == "STANDARD"


def test_a_versioned_bucket_expires_to_a_marker_and_drops_old_versions(lc, bkt):
    lc.put_bucket_versioning(Bucket=bkt, VersioningConfiguration={"Status": "Enabled"})
    ids = [lc.put_object(Bucket=bkt, Key="old/k", Body=str(n).encode())["VersionId"] for n in range(3)]
    lc.put_object(Bucket=bkt, Key="gone/k", Body=b"x")
    warm = [lc.put_object(Bucket=bkt, Key="warm/k", Body=b"w")["VersionId"] for _ in range(2)]
    put_rules(lc, bkt,
              {"ID": "warm", "Status": "Enabled", "Filter": {"Prefix": "warm/"},
               "NoncurrentVersionTransitions": [{"NoncurrentDays": 0, "StorageClass": "GLACIER_IR"}]},
              {"ID": "old", "Status": "Enabled", "Filter": {"Prefix": "old/"},
               "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 1}},
              {"ID": "gone", "Status": "Enabled", "Filter": {"Prefix": "gone/"}, "Expiration": {"Days": 1}},
              TransitionDefaultMinimumObjectSize="varies_by_storage_class")

    def versions(prefix):
        listing = lc.list_object_versions(Bucket=bkt, Prefix=prefix)
        return [v["VersionId"] for v in listing.get("Versions", [])], listing.get("DeleteMarkers", [])

    eventually(lambda: versions("old/")[0] == [ids[2], ids[1]])  # the newest noncurrent one is kept
    eventually(lambda: versions("gone/")[1])
    kept, markers = versions("gone/")
    assert len(kept) == 1 and markers[0]["IsLatest"] is True
    assert error_of(lambda: lc.get_object(Bucket=bkt, Key="gone/k"))[:2] == (404, "NoSuchKey")
    eventually(lambda: lc.head_object(Bucket=bkt, Key="warm/k", VersionId=warm[0]).get("StorageClass") == "GLACIER_IR")
    assert "StorageClass" not in lc.head_object(Bucket=bkt, Key="warm/k")  # the current version stays


def test_stale_multipart_uploads_are_aborted(lc, bkt):
    put_rules(lc, bkt, {"ID": "abort", "Status": "Enabled", "Filter": {"Prefix": "up/"},
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}})
    lc.create_multipart_upload(Bucket=bkt, Key="up/big")
    kept = lc.create_multipart_upload(Bucket=bkt, Key="elsewhere")["UploadId"]
    eventually(lambda: [u["UploadId"] for u in lc.list_multipart_uploads(Bucket=bkt).get("Uploads", [])] == [kept])


@pytest.mark.slow
def test_the_aws_cli_lists_versions(lc_server, lc, bkt, tmp_path):
    pytest.importorskip("awscli", reason="the AWS CLI (awscli) is not installed")
    lc.put_bucket_versioning(Bucket=bkt, VersioningConfiguration={"Status": "Enabled"})
    first = lc.put_object(Bucket=bkt, Key="k", Body=b"1")["VersionId"]
    lc.delete_object(Bucket=bkt, Key="k")
    done = subprocess.run([sys.executable, "-m", "awscli", "s3api", "list-object-versions", "--bucket", bkt,
                           "--output", "json", "--endpoint-url", lc_server.url], env=client_env(lc_server, tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert [v["VersionId"] for v in listing["Versions"]] == [first]
    assert listing["DeleteMarkers"][0]["IsLatest"] is True

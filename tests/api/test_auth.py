"""SigV4 is required by default, and each way of getting it wrong gets its AWS error."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import urllib.request

import botocore.exceptions
import pytest
from helpers import signed_request

TARGET = {"X-Amz-Target": "SageMaker.ListTrainingJobs", "Content-Type": "application/x-amz-json-1.1"}


def _code(call):
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_wrong_secret(server):
    client = server.client("sagemaker", aws_secret_access_key="x" * 40)
    assert _code(client.list_training_jobs)[0] == "InvalidSignatureException"
    s3 = server.client("s3", aws_secret_access_key="x" * 40)
    assert _code(s3.list_buckets) == ("SignatureDoesNotMatch", 403)


def test_unknown_access_key(server):
    client = server.client("sagemaker", aws_access_key_id="AKIANOTAKEY000000000")
    assert _code(client.list_training_jobs)[0] == "UnrecognizedClientException"
    s3 = server.client("s3", aws_access_key_id="AKIANOTAKEY000000000")
    assert _code(s3.list_buckets) == ("InvalidAccessKeyId", 403)


def test_clock_skew_rejected(server):
    akid, secret = server.credentials()
    late = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    status, body, _ = signed_request(server.url, service="sagemaker", region="us-east-1", access_key=akid,
                                     secret=secret, body=b"{}", headers=TARGET, when=late)
    assert status == 403
    assert json.loads(body)["__type"] == "InvalidSignatureException"
    assert "expired" in json.loads(body)["message"].lower()
    status, _, _ = signed_request(server.url, service="sagemaker", region="us-east-1", access_key=akid,
                                  secret=secret, body=b"{}", headers=TARGET)
    assert status == 200


def test_s3_content_sha256_checked_against_body(server, bucket):
    akid, secret = server.credentials()
    body = b"hello lake"
    wrong = hashlib.sha256(b"something else").hexdigest()
    status, payload, _ = signed_request(server.url, service="s3", region="us-east-1", access_key=akid, secret=secret,
                                        method="PUT", path=f"/{bucket}/obj.txt", body=body, payload_hash=wrong)
    assert status == 400 and b"XAmzContentSHA256Mismatch" in payload
    right = hashlib.sha256(body).hexdigest()
    status, _, _ = signed_request(server.url, service="s3", region="us-east-1", access_key=akid, secret=secret,
                                  method="PUT", path=f"/{bucket}/obj.txt", body=body, payload_hash=right)
    assert status == 200


def test_unsigned_request_rejected(server):
    request = urllib.request.Request(server.url + "/", data=b"{}", headers=TARGET, method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code in (400, 403)


def test_health_needs_no_auth(server):
    with urllib.request.urlopen(server.url + "/_sagelab/health", timeout=10) as response:
        assert response.status == 200


def test_unknown_operation_is_named(server):
    akid, secret = server.credentials()
    headers = {**TARGET, "X-Amz-Target": "SageMaker.CreateNotebookInstance"}
    status, body, _ = signed_request(server.url, service="sagemaker", region="us-east-1", access_key=akid,
                                     secret=secret, body=b"{}", headers=headers)
    assert status == 400
    payload = json.loads(body)
    assert payload["__type"] == "UnknownOperationException" and "CreateNotebookInstance" in payload["message"]

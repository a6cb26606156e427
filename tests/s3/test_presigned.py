"""Presigned URLs (SigV4 query-string authentication) made by boto3, used by a plain HTTP client."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
import uuid
from xml.etree import ElementTree

import botocore.config
import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

PATH_STYLE = botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
V4 = PATH_STYLE.merge(botocore.config.Config(signature_version="s3v4"))


@pytest.fixture(scope="module")
def s3v4(server):
    return server.client("s3", config=V4)


@pytest.fixture(scope="module", params=["default", "s3v4"])
def signer(request, server):
    """boto3's default presigner (signature version 2 for us-east-1) and SigV4 query authentication."""
    return server.client("s3", config=V4 if request.param == "s3v4" else PATH_STYLE)


def fetch(url: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None):
    """-> (status, body, headers) without raising on an error status."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read(), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def error_code(body: bytes) -> tuple[str, str]:
    root = ElementTree.fromstring(body)
    return root.findtext("Code"), root.findtext("Message")


def test_a_presigned_get_reads_the_object(s3, signer, bucket):
    s3.put_object(Bucket=bucket, Key="dir/a b.csv", Body=b"1,2\n")
    url = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "dir/a b.csv"}, ExpiresIn=60)
    assert "Signature=" in url
    status, body, _ = fetch(url)
    assert (status, body) == (200, b"1,2\n")


def test_a_presigned_get_honours_response_overrides(s3, signer, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = signer.generate_presigned_url("get_object", Params={
        "Bucket": bucket, "Key": "k", "ResponseContentDisposition": "attachment; filename=k.txt"})
    status, _, headers = fetch(url)
    assert status == 200 and headers["content-disposition"] == "attachment; filename=k.txt"


def test_a_presigned_put_writes_the_object(s3, signer, bucket):
    url = signer.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up.bin"}, ExpiresIn=300)
    # No Content-Type was signed: send an empty one (urllib would add a form type of its own).
    status, _, headers = fetch(url, "PUT", b"payload", {"Content-Type": ""})
    assert status == 200 and headers["etag"]
    assert s3.get_object(Bucket=bucket, Key="up.bin")["Body"].read() == b"payload"


def test_a_tampered_url_is_refused(s3, signer, bucket):
    s3.put_object(Bucket=bucket, Key="a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="b", Body=b"b")
    url = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a"})
    status, body, _ = fetch(url.replace(f"/{bucket}/a?", f"/{bucket}/b?"))
    assert status == 403 and error_code(body)[0] == "SignatureDoesNotMatch"
    assert fetch(url, "DELETE")[0] == 403  # signed for GET
    signature = url.split("Signature=", 1)[1].split("&", 1)[0]
    forged = url.replace(signature, ("A" if signature[0] != "A" else "B") + signature[1:])
    status, body, _ = fetch(forged)
    assert status == 403 and error_code(body)[0] == "SignatureDoesNotMatch"


def _signed_at(server, bucket: str, key: str, when: dt.datetime, expires: int) -> str:
    """A URL presigned as of `when` (boto3 always signs as of now)."""
    access_key, secret = server.credentials()
    request = AWSRequest(method="GET", url=f"{server.url}/{bucket}/{key}")
    signer = S3SigV4QueryAuth(Credentials(access_key, secret), "s3", "us-east-1", expires=expires)
    request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")
    signer._modify_request_before_signing(request)
    signature = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    signer._inject_signature_to_request(request, signature)
    return request.url


def test_an_expired_url_is_access_denied(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = _signed_at(server, bucket, "k", dt.datetime.now(dt.UTC) - dt.timedelta(hours=2), 3600)
    status, body, _ = fetch(url)
    assert status == 403 and error_code(body) == ("AccessDenied", "Request has expired")
    root = ElementTree.fromstring(body)
    assert root.findtext("X-Amz-Expires") == "3600" and root.findtext("ServerTime")


def test_an_expiry_over_a_week_is_refused(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = _signed_at(server, bucket, "k", dt.datetime.now(dt.UTC), 604801)
    status, body, _ = fetch(url)
    assert status == 400 and error_code(body) == (
        "AuthorizationQueryParametersError",
        "X-Amz-Expires must be less than a week (in seconds) that is 604800 seconds")
    assert fetch(_signed_at(server, bucket, "k", dt.datetime.now(dt.UTC), 604800))[0] == 200


def test_an_expired_v2_url_is_access_denied(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"}, ExpiresIn=-10)
    status, body, _ = fetch(url)
    assert status == 403 and error_code(body) == ("AccessDenied", "Request has expired")


def test_missing_query_parameters_are_named(s3v4, bucket):
    url = s3v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    without_date = "&".join(p for p in url.split("&") if not p.startswith("X-Amz-Date="))
    status, body, _ = fetch(without_date)
    code, message = error_code(body)
    assert (status, code) == (400, "AuthorizationQueryParametersError") and "X-Amz-Date" in message


def test_an_unknown_key_is_refused(server, bucket):
    stranger = server.client("s3", aws_access_key_id="AKIANOSUCHKEY0000000", aws_secret_access_key="x" * 40,
                             config=V4)
    url = stranger.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    status, body, _ = fetch(url)
    assert status == 403 and error_code(body)[0] == "InvalidAccessKeyId"


@pytest.fixture(scope="module")
def iam(server):
    return server.client("iam")


def _user(server, iam, statement: dict):
    name = f"presign-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [statement]}))
    return key


def test_the_enforcer_sees_the_presigning_user(server, iam, s3, bucket):
    s3.put_object(Bucket=bucket, Key="open/a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="secret/b", Body=b"b")
    key = _user(server, iam, {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/open/*"})
    user_s3 = server.client("s3", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                            config=V4)
    allowed = user_s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "open/a"})
    assert fetch(allowed)[:2] == (200, b"a")
    refused = user_s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "secret/b"})
    status, body, _ = fetch(refused)
    assert status == 403 and error_code(body)[0] == "AccessDenied"
    assert "is not authorized to perform: s3:GetObject" in error_code(body)[1]


def test_session_credentials_sign_with_their_token(server, iam, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"session")
    key = _user(server, iam, {"Effect": "Allow", "Action": ["s3:GetObject", "sts:GetSessionToken"], "Resource": "*"})
    sts = server.client("sts", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
    creds = sts.get_session_token()["Credentials"]
    session_s3 = server.client("s3", aws_access_key_id=creds["AccessKeyId"],
                               aws_secret_access_key=creds["SecretAccessKey"],
                               aws_session_token=creds["SessionToken"], config=V4)
    url = session_s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    assert "X-Amz-Security-Token=" in url
    assert fetch(url)[:2] == (200, b"session")
    token = url.split("X-Amz-Security-Token=", 1)[1].split("&", 1)[0]
    status, body, _ = fetch(url.replace(token, "bogus"))
    assert status in (400, 403) and error_code(body)[0] in ("SignatureDoesNotMatch", "InvalidToken")

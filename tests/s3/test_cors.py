"""Bucket CORS through boto3, and a browser's preflight and cross-origin requests over plain HTTP."""

from __future__ import annotations

import urllib.error
import urllib.request
from xml.etree import ElementTree

import botocore.config
import botocore.exceptions
import pytest

RULES = {"CORSRules": [
    {"ID": "app", "AllowedOrigins": ["https://app.example.com", "https://*.example.org"],
     "AllowedMethods": ["GET", "PUT"], "AllowedHeaders": ["content-type", "x-amz-*"],
     "ExposeHeaders": ["ETag", "x-amz-request-id"], "MaxAgeSeconds": 600},
    {"AllowedOrigins": ["*"], "AllowedMethods": ["HEAD"]},
]}


def error_of(call) -> tuple[int, str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    response = raised.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def fetch(url: str, method: str = "GET", headers: dict | None = None):
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read(), {k.lower(): v for k, v in answer.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, error.read(), {k.lower(): v for k, v in error.headers.items()}


def code_of(body: bytes) -> str:
    return ElementTree.fromstring(body).findtext("Code")


def test_cors_rules_are_put_read_and_deleted(s3, bucket):
    assert error_of(lambda: s3.get_bucket_cors(Bucket=bucket)) == (
        404, "NoSuchCORSConfiguration", "The CORS configuration does not exist")
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES["CORSRules"]
    s3.delete_bucket_cors(Bucket=bucket)
    assert error_of(lambda: s3.get_bucket_cors(Bucket=bucket))[1] == "NoSuchCORSConfiguration"


def test_bad_cors_rules_are_refused(s3, bucket):
    def put(*rules):
        return error_of(lambda: s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": list(rules)}))
    assert put({"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}) == (
        400, "InvalidRequest", "Found unsupported HTTP method in CORS config. Unsupported method is PATCH")
    assert put({"AllowedOrigins": ["https://*.*.com"], "AllowedMethods": ["GET"]}) == (
        400, "InvalidRequest", 'AllowedOrigin "https://*.*.com" can not have more than one wildcard.')
    assert put()[:2] == (400, "MalformedXML")
    assert put(*[{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}] * 101)[:2] == (400, "InvalidRequest")
    assert error_of(lambda: s3.get_bucket_cors(Bucket=bucket))[1] == "NoSuchCORSConfiguration"
    assert error_of(lambda: s3.put_bucket_cors(Bucket="no-such-bucket-here", CORSConfiguration=RULES))[1] == (
        "NoSuchBucket")


def test_a_preflight_is_answered_from_the_matching_rule_without_credentials(server, s3, bucket):
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    status, _, headers = fetch(f"{server.url}/{bucket}/data/a.csv", "OPTIONS", {
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "Content-Type, X-Amz-Meta-Owner"})
    assert status == 200
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert headers["access-control-allow-methods"] == "GET, PUT"
    assert headers["access-control-allow-headers"] == "content-type, x-amz-meta-owner"
    assert headers["access-control-expose-headers"] == "ETag, x-amz-request-id"
    assert headers["access-control-max-age"] == "600"
    assert headers["access-control-allow-credentials"] == "true"
    wildcard = fetch(f"{server.url}/{bucket}/k", "OPTIONS", {"Origin": "https://api.example.org",
                                                             "Access-Control-Request-Method": "GET"})
    assert wildcard[0] == 200 and wildcard[2]["access-control-allow-origin"] == "https://api.example.org"
    anyone = fetch(f"{server.url}/{bucket}", "OPTIONS", {"Origin": "http://elsewhere",
                                                         "Access-Control-Request-Method": "HEAD"})
    assert anyone[0] == 200 and anyone[2]["access-control-allow-origin"] == "*"


def test_a_preflight_no_rule_allows_is_refused(server, s3, bucket):
    url = f"{server.url}/{bucket}/k"
    status, body, _ = fetch(url, "OPTIONS", {"Origin": "https://app.example.com",
                                             "Access-Control-Request-Method": "GET"})
    assert (status, code_of(body)) == (403, "AccessForbidden")  # no CORS configuration yet
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    for headers in ({"Origin": "https://evil.example.net", "Access-Control-Request-Method": "GET"},
                    {"Origin": "https://app.example.com", "Access-Control-Request-Method": "DELETE"},
                    {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "authorization"}):
        status, body, answer = fetch(url, "OPTIONS", headers)
        assert (status, code_of(body)) == (403, "AccessForbidden")
        assert "access-control-allow-origin" not in answer
    status, body, _ = fetch(url, "OPTIONS", {"Access-Control-Request-Method": "GET"})
    assert (status, code_of(body)) == (400, "BadRequest")
    status, body, _ = fetch(f"{server.url}/no-such-bucket-here/k", "OPTIONS", {
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"})
    assert (status, code_of(body)) == (404, "NoSuchBucket")


def test_ordinary_answers_carry_the_allow_origin_header(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration=RULES)
    signer = server.client("s3", config=botocore.config.Config(signature_version="s3v4",
                                                               s3={"addressing_style": "path"}))
    url = signer.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    status, body, headers = fetch(url, headers={"Origin": "https://app.example.com"})
    assert (status, body) == (200, b"x")
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert headers["access-control-expose-headers"] == "ETag, x-amz-request-id"
    status, _, headers = fetch(url, headers={"Origin": "https://evil.example.net"})
    assert status == 200 and "access-control-allow-origin" not in headers
    assert "access-control-allow-origin" not in fetch(url)[2]


def test_an_unsigned_request_that_is_not_a_preflight_is_still_refused(server, bucket):
    status, body, _ = fetch(f"{server.url}/{bucket}/k", "GET", {"Origin": "https://app.example.com"})
    assert (status, code_of(body)) == (403, "AccessDenied")

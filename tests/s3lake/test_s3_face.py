"""The S3 face of a sagelab server whose lake is an external S3 store: real boto3 clients of sagelab, and a
boto3 client of the external store that sees where every object really is."""

from __future__ import annotations

import hashlib
import secrets

import botocore.exceptions
import pytest

from .external import external_keys


def test_put_get_range_head_and_delete(s3, bucket, external, lake):
    s3.put_object(Bucket=bucket, Key="dir/one.txt", Body=b"0123456789", ContentType="text/plain",
                  Metadata={"who": "test"})
    got = s3.get_object(Bucket=bucket, Key="dir/one.txt")
    assert got["Body"].read() == b"0123456789" and got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"who": "test"} and got["ETag"] == f'"{hashlib.md5(b"0123456789").hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key="dir/one.txt", Range="bytes=2-5")["Body"].read() == b"2345"
    assert s3.get_object(Bucket=bucket, Key="dir/one.txt", Range="bytes=-3")["Body"].read() == b"789"
    assert s3.head_object(Bucket=bucket, Key="dir/one.txt")["ContentLength"] == 10

    stored = external_keys(external, lake, bucket, "dir/one.txt")
    assert f"{lake.prefix}/{bucket}/dir/one.txt/@meta.json" in stored
    blob = next(k for k in stored if "/@data/" in k)
    assert external.get_object(Bucket=lake.bucket, Key=blob)["Body"].read() == b"0123456789"

    s3.delete_object(Bucket=bucket, Key="dir/one.txt")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        s3.get_object(Bucket=bucket, Key="dir/one.txt")
    assert caught.value.response["Error"]["Code"] == "NoSuchKey"
    assert external_keys(external, lake, bucket, "dir/one.txt") == []
    s3.delete_bucket(Bucket=bucket)
    assert external_keys(external, lake, bucket) == []


def test_list_v2_pages_and_prefixes(s3, bucket):
    keys = [f"logs/{day:02d}.txt" for day in range(1, 8)] + ["logs/", "other/x", "a", "a/b"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 3}))
    assert len(pages) == 4
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == sorted(keys)
    folders = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in folders["CommonPrefixes"]] == ["a/", "logs/", "other/"]
    assert [o["Key"] for o in folders["Contents"]] == ["a"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="logs/0", StartAfter="logs/03.txt")
    assert [o["Key"] for o in listed["Contents"]] == ["logs/04.txt", "logs/05.txt", "logs/06.txt", "logs/07.txt"]


def test_copy_and_multipart_upload(s3, bucket, tmp_path):
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me")
    s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"copy me"

    body = secrets.token_bytes(12 << 20)
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big.bin")["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(body), 5 << 20), 1):
        etag = s3.upload_part(Bucket=bucket, Key="big.bin", UploadId=upload, PartNumber=number,
                              Body=body[start:start + (5 << 20)])["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    done = s3.complete_multipart_upload(Bucket=bucket, Key="big.bin", UploadId=upload,
                                        MultipartUpload={"Parts": parts})
    assert done["ETag"].strip('"').endswith("-3")
    assert s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == body
    start = (5 << 20) - 10
    assert s3.get_object(Bucket=bucket, Key="big.bin", Range=f"bytes={start}-{start + 19}")["Body"].read() == \
        body[start:start + 20]
    target = tmp_path / "down.bin"
    s3.download_file(bucket, "big.bin", str(target))  # boto3's own ranged, threaded download
    assert target.read_bytes() == body


def test_versioning_and_encryption(s3, bucket, external, lake):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"first")["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="k", Body=b"second")["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=first)["Body"].read() == b"first"
    marker = s3.delete_object(Bucket=bucket, Key="k")
    assert marker["DeleteMarker"] is True
    listing = s3.list_object_versions(Bucket=bucket)
    assert [v["VersionId"] for v in listing["Versions"]] == [second, first]
    assert [m["VersionId"] for m in listing["DeleteMarkers"]] == [marker["VersionId"]]
    s3.delete_object(Bucket=bucket, Key="k", VersionId=marker["VersionId"])
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"second"

    secret = b"sealed at rest in the external store " * 50
    s3.put_object(Bucket=bucket, Key="secret", Body=secret, ServerSideEncryption="aws:kms")
    got = s3.get_object(Bucket=bucket, Key="secret")
    assert got["Body"].read() == secret and got["ServerSideEncryption"] == "aws:kms"
    assert s3.get_object(Bucket=bucket, Key="secret", Range="bytes=5-9")["Body"].read() == secret[5:10]
    blobs = [k for k in external_keys(external, lake, bucket, "secret") if "/@data/" in k]
    assert len(blobs) == 1
    assert secret[:30] not in external.get_object(Bucket=lake.bucket, Key=blobs[0])["Body"].read()

"""The S3 face, driven by an unmodified boto3 client against a real server."""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from xml.etree import ElementTree

import botocore.exceptions
import pytest
from boto3.s3.transfer import TransferConfig
from conftest import unique
from helpers import signed_request

from sagelab.embedded import ServerProcess

MiB = 1024 * 1024
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _error(call, *args, **kwargs) -> tuple[str, int]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        call(*args, **kwargs)
    response = info.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _raw(server: ServerProcess, method: str, path: str, body: bytes = b"", **kwargs) -> tuple[int, bytes, dict]:
    akid, secret = server.credentials()
    return signed_request(server.url, service="s3", region=server.region, access_key=akid, secret=secret,
                          method=method, path=path, body=body, **kwargs)


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


# --- buckets -----------------------------------------------------------------------------------------
def test_bucket_lifecycle(s3, server):
    name = unique("bkt")
    assert s3.create_bucket(Bucket=name)["Location"] == f"/{name}"
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert [b["Name"] for b in s3.list_buckets(Prefix=name)["Buckets"]] == [name]
    assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_location(Bucket=name)["LocationConstraint"] is None
    # Re-creating an owned bucket: 200 in us-east-1 (S3's legacy rule), an error in every other region.
    assert s3.create_bucket(Bucket=name)["Location"] == f"/{name}"
    elsewhere = server.client("s3", region_name="eu-west-1")
    assert _error(elsewhere.create_bucket, Bucket=name, CreateBucketConfiguration={
        "LocationConstraint": "eu-west-1"}) == ("BucketAlreadyOwnedByYou", 409)
    assert s3.delete_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert _error(s3.head_bucket, Bucket=name) == ("404", 404)
    assert _error(s3.delete_bucket, Bucket=name) == ("NoSuchBucket", 404)


def test_head_bucket_404_has_empty_body(server):
    status, body, _ = _raw(server, "HEAD", f"/{unique('missing')}")
    assert (status, body) == (404, b"")


def test_bucket_not_empty(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert _error(s3.delete_bucket, Bucket=bucket) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=bucket, Key="k")
    s3.delete_bucket(Bucket=bucket)


def test_missing_bucket_and_key(s3, bucket):
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="nope")
    with pytest.raises(s3.exceptions.NoSuchBucket):
        s3.get_object(Bucket=unique("missing"), Key="nope")
    with pytest.raises(s3.exceptions.NoSuchBucket):
        s3.list_objects_v2(Bucket=unique("missing"))
    assert _error(s3.head_object, Bucket=bucket, Key="nope") == ("404", 404)
    assert _error(s3.put_object, Bucket=unique("missing"), Key="k", Body=b"x") == ("NoSuchBucket", 404)


def test_unknown_operation_is_named_not_a_500(s3, bucket):
    with pytest.raises(botocore.exceptions.ClientError) as info:
        s3.get_bucket_website(Bucket=bucket)
    assert info.value.response["Error"]["Code"] == "NotImplemented"
    assert "?website" in info.value.response["Error"]["Message"]


# --- objects -----------------------------------------------------------------------------------------
def test_put_get_head_delete_object(s3, bucket):
    body = b"hello, lake\n" * 100
    put = s3.put_object(Bucket=bucket, Key="dir/hello.txt", Body=body, ContentType="text/plain",
                        Metadata={"Owner": "ada", "purpose": "test"})
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'

    got = s3.get_object(Bucket=bucket, Key="dir/hello.txt")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/plain"
    assert got["ContentLength"] == len(body)
    assert got["ETag"] == put["ETag"]
    assert got["Metadata"] == {"owner": "ada", "purpose": "test"}
    assert got["AcceptRanges"] == "bytes"
    assert got["LastModified"].year >= 2024

    head = s3.head_object(Bucket=bucket, Key="dir/hello.txt")
    assert (head["ContentLength"], head["ETag"], head["ContentType"]) == (len(body), put["ETag"], "text/plain")
    assert head["Metadata"] == got["Metadata"]

    assert s3.delete_object(Bucket=bucket, Key="dir/hello.txt")["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="dir/hello.txt")
    # Deleting what is not there still succeeds, as in S3.
    assert s3.delete_object(Bucket=bucket, Key="dir/hello.txt")["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_default_content_type_and_empty_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b""
    assert got["ContentType"] == "binary/octet-stream"
    assert got["ETag"] == f'"{hashlib.md5(b"").hexdigest()}"'


def test_ranges(s3, bucket):
    data = bytes(range(256)) * 4
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    cases = {"bytes=10-19": (10, 19), "bytes=1000-": (1000, 1023), "bytes=-24": (1000, 1023),
             "bytes=1020-5000": (1020, 1023), "bytes=-5000": (0, 1023)}
    for header, (start, end) in cases.items():
        got = s3.get_object(Bucket=bucket, Key="r", Range=header)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206, header
        assert got["ContentRange"] == f"bytes {start}-{end}/1024", header
        assert got["ContentLength"] == end - start + 1
        assert got["Body"].read() == data[start:end + 1], header
    assert _error(s3.get_object, Bucket=bucket, Key="r", Range="bytes=1024-") == ("InvalidRange", 416)
    assert _error(s3.get_object, Bucket=bucket, Key="r", Range="bytes=-0") == ("InvalidRange", 416)
    # Not a single byte range: the whole object, as S3 answers.
    whole = s3.get_object(Bucket=bucket, Key="r", Range="bytes=20-10")
    assert whole["ResponseMetadata"]["HTTPStatusCode"] == 200 and whole["Body"].read() == data


def test_conditional_get(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"abc")["ETag"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"abc"
    assert _error(s3.get_object, Bucket=bucket, Key="c", IfMatch='"0000"') == ("PreconditionFailed", 412)
    assert _error(s3.get_object, Bucket=bucket, Key="c", IfNoneMatch=etag) == ("304", 304)
    assert _error(s3.put_object, Bucket=bucket, Key="c", Body=b"new", IfNoneMatch="*") == ("PreconditionFailed", 412)


def test_checksums_are_verified(s3, bucket):
    assert s3.put_object(Bucket=bucket, Key="ok", Body=b"data", ChecksumCRC32=_crc32(b"data"))["ChecksumCRC32"] \
        == _crc32(b"data")
    assert _error(s3.put_object, Bucket=bucket, Key="bad", Body=b"data", ChecksumCRC32=_crc32(b"other")) \
        == ("BadDigest", 400)
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    assert _error(s3.put_object, Bucket=bucket, Key="bad", Body=b"data", ContentMD5=wrong_md5) == ("BadDigest", 400)
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="bad")


def test_aws_chunked_body_with_trailing_checksum(server, s3, bucket):
    data = os.urandom(70_000)
    chunks = [data[:65536], data[65536:]]
    framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)

    def send(trailer: str) -> tuple[int, bytes]:
        body = framed + b"0\r\nx-amz-checksum-crc32:" + trailer.encode() + b"\r\n\r\n"
        status, payload, _ = _raw(server, "PUT", f"/{bucket}/chunked.bin", body, payload_hash=(
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER"), headers={
            "Content-Encoding": "aws-chunked", "X-Amz-Trailer": "x-amz-checksum-crc32",
            "X-Amz-Decoded-Content-Length": str(len(data)), "X-Amz-Sdk-Checksum-Algorithm": "CRC32"})
        return status, payload

    assert send(_crc32(data))[0] == 200
    assert s3.get_object(Bucket=bucket, Key="chunked.bin")["Body"].read() == data
    status, payload = send(_crc32(b"not the data"))
    assert status == 400 and b"<Code>BadDigest</Code>" in payload
    assert s3.get_object(Bucket=bucket, Key="chunked.bin")["Body"].read() == data


def test_dotdot_key_refused(server, s3, bucket):
    lake = server.home / "lake"
    assert _error(s3.put_object, Bucket=bucket, Key="a/../../etc/passwd", Body=b"pwned") == ("InvalidArgument", 400)
    for key in ("a/./b", "/leading"):
        assert _error(s3.put_object, Bucket=bucket, Key=key, Body=b"pwned")[0] == "InvalidArgument"
    # The literal path on the wire, whatever the client library does to it.
    status, payload, _ = _raw(server, "PUT", f"/{bucket}/a/../../etc/passwd", b"pwned")
    assert status == 400 and b"InvalidArgument" in payload
    assert not (lake / "etc").exists()
    assert not [p for p in server.home.rglob("passwd")]
    assert not [p for p in (lake / bucket).rglob("*") if p.is_file()]


def test_virtual_host_addressing(server, s3, bucket):
    s3.put_object(Bucket=bucket, Key="vh/key.txt", Body=b"virtual")
    status, body, _ = _raw(server, "GET", "/vh/key.txt", headers={"Host": f"{bucket}.localhost:{server.port}"})
    assert (status, body) == (200, b"virtual")


# --- listings ----------------------------------------------------------------------------------------
def test_list_objects_v2_prefix_and_delimiter(s3, bucket):
    keys = ["a.txt", "logs/2024/01.log", "logs/2024/02.log", "logs/2025/01.log", "logs/readme", "zeta/x"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    everything = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in everything["Contents"]] == keys
    assert everything["KeyCount"] == len(keys) and not everything["IsTruncated"]
    assert everything["Contents"][0]["Size"] == len(b"a.txt")
    assert everything["Contents"][0]["ETag"] == f'"{hashlib.md5(b"a.txt").hexdigest()}"'

    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["a.txt"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["logs/", "zeta/"]

    logs = s3.list_objects_v2(Bucket=bucket, Prefix="logs/", Delimiter="/")
    assert [o["Key"] for o in logs["Contents"]] == ["logs/readme"]
    assert [p["Prefix"] for p in logs["CommonPrefixes"]] == ["logs/2024/", "logs/2025/"]
    assert logs["Prefix"] == "logs/" and logs["KeyCount"] == 3

    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="logs/2024")["Contents"]] == keys[1:3]
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="nothing/")
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="logs/2025/01.log")
    assert [o["Key"] for o in after["Contents"]] == ["logs/readme", "zeta/x"]


def test_list_objects_v2_paginator(s3, bucket):
    keys = sorted(f"k/{i:02d}" for i in range(7))
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}))
    assert [len(p.get("Contents", [])) for p in pages] == [2, 2, 2, 1]
    assert [o["Key"] for p in pages for o in p["Contents"]] == keys
    assert all(p["IsTruncated"] for p in pages[:-1]) and not pages[-1]["IsTruncated"]
    first = s3.list_objects_v2(Bucket=bucket, MaxKeys=2)
    assert first["MaxKeys"] == 2 and first["NextContinuationToken"]


def test_paginate_over_common_prefixes(s3, bucket):
    keys = ["a/1", "a/2", "b/1", "c", "d/1", "d/2", "e"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Delimiter="/", MaxKeys=2))
    names = [e.get("Key") or e.get("Prefix") for p in pages for e in p.get("Contents", []) + p.get("CommonPrefixes", [])]
    assert sorted(names) == ["a/", "b/", "c", "d/", "e"]
    assert len(pages) == 3


def test_list_objects_v1_with_marker(s3, bucket):
    keys = sorted(f"m/{i}" for i in range(5))
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    pages = list(s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}))
    assert [o["Key"] for p in pages for o in p["Contents"]] == keys
    assert len(pages) == 3
    assert [o["Key"] for o in s3.list_objects(Bucket=bucket, Marker="m/2")["Contents"]] == keys[3:]


def test_special_keys_round_trip(s3, bucket):
    keys = ["with space.txt", "plus+sign", "percent%20literal", "ünïcødé/ключ/キー", "amp&lt<gt>", "tilde~q?x=1#h"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(keys, key=lambda k: k.encode())
    assert [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]] == listed
    prefixed = s3.list_objects_v2(Bucket=bucket, Prefix="ünïcødé/", Delimiter="/")
    assert [p["Prefix"] for p in prefixed["CommonPrefixes"]] == ["ünïcødé/ключ/"]
    assert prefixed["Prefix"] == "ünïcødé/"
    # Asked explicitly, the encoding is left to the caller to undo.
    raw = s3.list_objects_v2(Bucket=bucket, Prefix="plus", EncodingType="url")
    assert [o["Key"] for o in raw["Contents"]] == ["plus%2Bsign"]


def test_delete_objects(s3, bucket):
    for key in ("d/1", "d/2", "d/3"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d/1"}, {"Key": "d/2"}, {"Key": "d/none"},
                                                                  {"Key": "a/../b"}]})
    assert sorted(d["Key"] for d in result["Deleted"]) == ["d/1", "d/2", "d/none"]
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("a/../b", "InvalidArgument")]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["d/3"]
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "d/3"}], "Quiet": True})
    assert "Deleted" not in quiet and "Errors" not in quiet
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_copy_object(s3, bucket):
    other = unique("copy-dst")
    s3.create_bucket(Bucket=other)
    put = s3.put_object(Bucket=bucket, Key="src dir/orig+1.txt", Body=b"original", ContentType="text/plain",
                        Metadata={"color": "blue"})
    copied = s3.copy_object(Bucket=other, Key="copy.txt", CopySource={"Bucket": bucket, "Key": "src dir/orig+1.txt"})
    assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
    assert copied["CopyObjectResult"]["LastModified"].year >= 2024
    got = s3.get_object(Bucket=other, Key="copy.txt")
    assert (got["Body"].read(), got["ContentType"], got["Metadata"]) == (b"original", "text/plain", {"color": "blue"})

    s3.copy_object(Bucket=other, Key="replaced.txt", CopySource=f"{bucket}/src dir/orig+1.txt",
                   MetadataDirective="REPLACE", ContentType="application/json", Metadata={"shape": "round"})
    head = s3.head_object(Bucket=other, Key="replaced.txt")
    assert (head["ContentType"], head["Metadata"]) == ("application/json", {"shape": "round"})

    same = {"Bucket": other, "Key": "copy.txt"}
    assert _error(s3.copy_object, Bucket=other, Key="copy.txt", CopySource=same) == ("InvalidRequest", 400)
    s3.copy_object(Bucket=other, Key="copy.txt", CopySource=same, MetadataDirective="REPLACE", Metadata={"v": "2"})
    assert s3.head_object(Bucket=other, Key="copy.txt")["Metadata"] == {"v": "2"}
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.copy_object(Bucket=other, Key="x", CopySource={"Bucket": bucket, "Key": "missing"})


# --- multipart ---------------------------------------------------------------------------------------
def test_upload_file_multipart_round_trip(s3, bucket, tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(20 * MiB))
    config = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB)
    s3.upload_file(str(source), bucket, "big/blob.bin", Config=config, ExtraArgs={"ContentType": "application/x-bin"})
    head = s3.head_object(Bucket=bucket, Key="big/blob.bin")
    assert head["ContentLength"] == 20 * MiB
    assert head["ETag"].endswith('-3"') and head["ContentType"] == "application/x-bin"
    target = tmp_path / "back.bin"
    s3.download_file(bucket, "big/blob.bin", str(target), Config=config)
    assert target.read_bytes() == source.read_bytes()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_multipart_low_level(s3, bucket):
    part1, part2 = os.urandom(5 * MiB), b"tail"
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", Metadata={"kind": "parts"})
    uid = upload["UploadId"]
    assert (upload["Bucket"], upload["Key"]) == (bucket, "mp")
    assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [uid]
    e1 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=1, Body=part1)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="mp", UploadId=uid, PartNumber=2, Body=part2)["ETag"]
    assert e1 == f'"{hashlib.md5(part1).hexdigest()}"'
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=uid)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [(1, e1, len(part1)), (2, e2, len(part2))]

    def complete(*chosen):
        return s3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": e} for n, e in chosen]})

    assert _error(complete, (1, e1), (2, '"0123456789abcdef0123456789abcdef"')) == ("InvalidPart", 400)
    assert _error(complete, (2, e2), (1, e1)) == ("InvalidPartOrder", 400)
    done = complete((1, e1), (2, e2))
    expected = hashlib.md5(bytes.fromhex(e1.strip('"')) + bytes.fromhex(e2.strip('"'))).hexdigest() + "-2"
    assert done["ETag"] == f'"{expected}"' and done["Key"] == "mp"
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert got["Body"].read() == part1 + part2
    assert (got["ETag"], got["Metadata"]) == (done["ETag"], {"kind": "parts"})
    with pytest.raises(s3.exceptions.NoSuchUpload):
        complete((1, e1), (2, e2))


def test_multipart_small_parts_refused(s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="small")["UploadId"]
    etags = [s3.upload_part(Bucket=bucket, Key="small", UploadId=uid, PartNumber=n, Body=b"x" * 10)["ETag"]
             for n in (1, 2)]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=uid, MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": e} for n, e in zip((1, 2), etags, strict=True)]})
    assert info.value.response["Error"]["Code"] == "EntityTooSmall"
    # A single small part is a valid (last) part.
    s3.complete_multipart_upload(Bucket=bucket, Key="small", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": etags[0]}]})
    assert s3.get_object(Bucket=bucket, Key="small")["Body"].read() == b"x" * 10


def test_abort_multipart_upload(server, s3, bucket):
    uid = s3.create_multipart_upload(Bucket=bucket, Key="aborted")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="aborted", UploadId=uid, PartNumber=1, Body=b"part")
    staged = server.home / "lake" / ".staging" / "multipart" / uid
    assert staged.is_dir()
    assert s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=uid)[
        "ResponseMetadata"]["HTTPStatusCode"] == 204
    assert not staged.exists()
    with pytest.raises(s3.exceptions.NoSuchUpload):
        s3.upload_part(Bucket=bucket, Key="aborted", UploadId=uid, PartNumber=2, Body=b"late")
    assert _error(s3.abort_multipart_upload, Bucket=bucket, Key="aborted", UploadId=uid) == ("NoSuchUpload", 404)
    assert _error(s3.abort_multipart_upload, Bucket=bucket, Key="aborted", UploadId="../../x") == ("NoSuchUpload", 404)
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_managed_copy_of_a_large_object(s3, bucket, tmp_path):
    data = os.urandom(9 * MiB)
    s3.put_object(Bucket=bucket, Key="large", Body=data)
    s3.copy({"Bucket": bucket, "Key": "large"}, bucket, "large-copy",
            Config=TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=5 * MiB))
    assert s3.get_object(Bucket=bucket, Key="large-copy")["Body"].read() == data


def test_xml_responses_carry_the_s3_namespace(server, bucket):
    status, body, headers = _raw(server, "GET", f"/{bucket}?list-type=2", payload_hash=hashlib.sha256(b"").hexdigest())
    assert status == 200 and headers["content-type"] == "application/xml"
    assert ElementTree.fromstring(body).tag == f"{NS}ListBucketResult"


# --- durability --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_objects_survive_a_restart(tmp_path):
    name = unique("durable")
    first = ServerProcess(tmp_path / "home").start()
    try:
        s3 = first.client("s3")
        s3.create_bucket(Bucket=name)
        s3.put_object(Bucket=name, Key="kept/obj.txt", Body=b"still here", Metadata={"k": "v"})
    finally:
        first.stop()
    second = ServerProcess(tmp_path / "home").start()
    try:
        s3 = second.client("s3")
        got = s3.get_object(Bucket=name, Key="kept/obj.txt")
        assert (got["Body"].read(), got["Metadata"]) == (b"still here", {"k": "v"})
        assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    finally:
        second.stop()

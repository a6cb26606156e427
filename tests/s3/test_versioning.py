"""S3 versioning: every write keeps the version it replaces, deletes write markers, and versions are listed."""

from __future__ import annotations

import botocore.exceptions
import pytest


def error_of(call) -> tuple[int, str, dict]:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    response = raised.value.response
    return (response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"],
            response["ResponseMetadata"]["HTTPHeaders"])


def versioned(s3, bucket: str, status: str = "Enabled") -> str:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
    return bucket


def test_a_bucket_reports_its_versioning_status(s3, bucket):
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)
    versioned(s3, bucket)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    versioned(s3, bucket, "Suspended")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"
    assert error_of(lambda: s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={
        "Status": "Off"}))[:2] == (400, "MalformedXML")
    assert error_of(lambda: s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={
        "Status": "Enabled", "MFADelete": "Enabled"}))[:2] == (400, "InvalidRequest")


def test_an_unversioned_bucket_answers_without_version_ids(s3, bucket):
    put = s3.put_object(Bucket=bucket, Key="k", Body=b"one")
    assert "VersionId" not in put
    assert "VersionId" not in s3.get_object(Bucket=bucket, Key="k")
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert "VersionId" not in deleted and "DeleteMarker" not in deleted
    assert error_of(lambda: s3.get_object(Bucket=bucket, Key="k"))[:2] == (404, "NoSuchKey")


def test_every_write_is_kept_and_each_version_is_readable(s3, bucket):
    versioned(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="model.bin", Body=b"v1", Metadata={"n": "1"})["VersionId"]
    second = s3.put_object(Bucket=bucket, Key="model.bin", Body=b"v2")["VersionId"]
    assert first != second
    got = s3.get_object(Bucket=bucket, Key="model.bin")
    assert got["Body"].read() == b"v2" and got["VersionId"] == second
    old = s3.get_object(Bucket=bucket, Key="model.bin", VersionId=first)
    assert old["Body"].read() == b"v1" and old["Metadata"] == {"n": "1"} and old["VersionId"] == first
    assert s3.head_object(Bucket=bucket, Key="model.bin", VersionId=first)["ContentLength"] == 2
    assert s3.get_object(Bucket=bucket, Key="model.bin", VersionId=first, Range="bytes=1-1")["Body"].read() == b"1"
    assert error_of(lambda: s3.get_object(Bucket=bucket, Key="model.bin", VersionId="0" * 32))[:2] == (
        404, "NoSuchVersion")
    assert error_of(lambda: s3.get_object(Bucket=bucket, Key="model.bin", VersionId="bad!"))[:2] == (
        400, "InvalidArgument")
    # Only the current version is listed as an object.
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["model.bin"]


def test_copy_and_multipart_writes_are_versions_too(s3, bucket):
    versioned(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="src", Body=b"old")["VersionId"]
    s3.put_object(Bucket=bucket, Key="src", Body=b"new")
    copy = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src", "VersionId": first})
    assert copy["CopySourceVersionId"] == first and copy["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"old"
    upload = s3.create_multipart_upload(Bucket=bucket, Key="dst")
    part = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload["UploadId"], PartNumber=1,
                               CopySource={"Bucket": bucket, "Key": "src", "VersionId": first})
    assert part["CopySourceVersionId"] == first
    done = s3.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]})
    assert done["VersionId"] not in (copy["VersionId"], None)
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == b"old"
    assert s3.get_object(Bucket=bucket, Key="dst", VersionId=copy["VersionId"])["Body"].read() == b"old"


def test_a_delete_writes_a_marker_that_hides_the_object_until_it_is_removed(s3, bucket):
    versioned(s3, bucket)
    kept = s3.put_object(Bucket=bucket, Key="k", Body=b"data")["VersionId"]
    deleted = s3.delete_object(Bucket=bucket, Key="k")
    assert deleted["DeleteMarker"] is True
    marker = deleted["VersionId"]
    status, code, headers = error_of(lambda: s3.get_object(Bucket=bucket, Key="k"))
    assert (status, code) == (404, "NoSuchKey")
    assert headers["x-amz-delete-marker"] == "true" and headers["x-amz-version-id"] == marker
    status, code, headers = error_of(lambda: s3.get_object(Bucket=bucket, Key="k", VersionId=marker))
    assert (status, code, headers["x-amz-delete-marker"]) == (405, "MethodNotAllowed", "true")
    assert error_of(lambda: s3.head_object(Bucket=bucket, Key="k", VersionId=marker))[0] == 405
    status, _, headers = error_of(lambda: s3.head_object(Bucket=bucket, Key="k"))
    assert (status, headers["x-amz-delete-marker"]) == (404, "true")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert s3.get_object(Bucket=bucket, Key="k", VersionId=kept)["Body"].read() == b"data"
    # Removing the marker brings the object back.
    removed = s3.delete_object(Bucket=bucket, Key="k", VersionId=marker)
    assert removed["DeleteMarker"] is True and removed["VersionId"] == marker
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"data"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]
    # Removing the last version for good leaves nothing, and then the bucket may go.
    assert s3.delete_object(Bucket=bucket, Key="k", VersionId=kept)["VersionId"] == kept
    assert s3.list_object_versions(Bucket=bucket).get("Versions") is None
    s3.delete_bucket(Bucket=bucket)


def test_a_bucket_with_old_versions_is_not_empty(s3, bucket):
    versioned(s3, bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    s3.delete_object(Bucket=bucket, Key="k")
    assert error_of(lambda: s3.delete_bucket(Bucket=bucket))[:2] == (409, "BucketNotEmpty")


def test_tags_belong_to_one_version(s3, bucket):
    versioned(s3, bucket)
    first = s3.put_object(Bucket=bucket, Key="k", Body=b"1", Tagging="v=1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="k", Body=b"2", Tagging="v=2")
    assert s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=first)["TagSet"] == [{"Key": "v", "Value": "1"}]
    tagged = s3.put_object_tagging(Bucket=bucket, Key="k", VersionId=first,
                                   Tagging={"TagSet": [{"Key": "v", "Value": "one"}]})
    assert tagged["VersionId"] == first
    assert s3.get_object_tagging(Bucket=bucket, Key="k", VersionId=first)["TagSet"] == [
        {"Key": "v", "Value": "one"}]
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [{"Key": "v", "Value": "2"}]


def test_delete_objects_removes_versions_and_writes_markers(s3, bucket):
    versioned(s3, bucket)
    a1 = s3.put_object(Bucket=bucket, Key="a", Body=b"1")["VersionId"]
    s3.put_object(Bucket=bucket, Key="a", Body=b"2")
    s3.put_object(Bucket=bucket, Key="b", Body=b"1")
    result = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a", "VersionId": a1}, {"Key": "b"}]})
    by_key = {d["Key"]: d for d in result["Deleted"]}
    assert by_key["a"]["VersionId"] == a1 and "DeleteMarker" not in by_key["a"]
    assert by_key["b"]["DeleteMarker"] is True and by_key["b"]["DeleteMarkerVersionId"]
    listing = s3.list_object_versions(Bucket=bucket)
    assert [(v["Key"], v["IsLatest"]) for v in listing["Versions"]] == [("a", True), ("b", False)]
    assert [(m["Key"], m["IsLatest"]) for m in listing["DeleteMarkers"]] == [("b", True)]


def test_list_object_versions_pages_by_key_and_version_marker(s3, bucket):
    versioned(s3, bucket)
    written = {}
    for key in ("logs/a", "logs/b", "top"):
        written[key] = [s3.put_object(Bucket=bucket, Key=key, Body=key.encode())["VersionId"] for _ in range(2)]
    s3.delete_object(Bucket=bucket, Key="top")
    seen, kwargs = [], {}
    while True:
        page = s3.list_object_versions(Bucket=bucket, MaxKeys=2, **kwargs)
        items = page.get("Versions", []) + page.get("DeleteMarkers", [])
        assert len(items) <= 2
        seen += [(v["Key"], v["VersionId"]) for v in items]
        if not page["IsTruncated"]:
            break
        kwargs = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}
    assert len(seen) == len(set(seen)) == 7
    whole = s3.list_object_versions(Bucket=bucket)
    assert [v["VersionId"] for v in whole["Versions"] if v["Key"] == "logs/a"] == list(reversed(written["logs/a"]))
    assert [v["IsLatest"] for v in whole["Versions"] if v["Key"] == "top"] == [False, False]
    assert [m["IsLatest"] for m in whole["DeleteMarkers"]] == [True]
    folded = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in folded["CommonPrefixes"]] == ["logs/"]
    assert {v["Key"] for v in folded["Versions"]} == {"top"}
    only = s3.list_object_versions(Bucket=bucket, Prefix="logs/b")
    assert [v["VersionId"] for v in only["Versions"]] == list(reversed(written["logs/b"]))
    assert error_of(lambda: s3.list_object_versions(Bucket=bucket, VersionIdMarker=written["top"][0]))[:2] == (
        400, "InvalidArgument")
    paginator = s3.get_paginator("list_object_versions")
    assert sum(len(p.get("Versions", [])) for p in paginator.paginate(Bucket=bucket, MaxKeys=1)) == 6


def test_suspended_versioning_writes_the_null_version(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"before")  # written unversioned: the null version
    versioned(s3, bucket)
    kept = s3.put_object(Bucket=bucket, Key="k", Body=b"enabled")["VersionId"]
    assert s3.get_object(Bucket=bucket, Key="k", VersionId="null")["Body"].read() == b"before"
    versioned(s3, bucket, "Suspended")
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"s1")["VersionId"] == "null"
    assert s3.put_object(Bucket=bucket, Key="k", Body=b"s2")["VersionId"] == "null"
    ids = [v["VersionId"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]]
    assert ids == ["null", kept]  # the null version was replaced each time; the enabled-era one kept
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"s2"
    marker = s3.delete_object(Bucket=bucket, Key="k")
    assert marker["DeleteMarker"] is True and marker["VersionId"] == "null"
    listing = s3.list_object_versions(Bucket=bucket)
    assert [v["VersionId"] for v in listing["Versions"]] == [kept]
    assert [m["VersionId"] for m in listing["DeleteMarkers"]] == ["null"]


def test_a_write_cut_short_loses_no_acknowledged_version(tmp_path, monkeypatch):
    """A crash between a versioned write's moves: the version it was replacing is still the latest."""
    import os

    from sagelab.lake.blobs import LocalBlobStore

    store = LocalBlobStore(tmp_path)
    store.create_bucket("bkt")
    store.set_bucket_config("bkt", "versioning", "Enabled")
    first = store.put("bkt", "k", [b"acknowledged"]).version_id
    replace = os.replace

    def crash_on_arrival(source, target):
        if str(target).endswith("@data") and ".staging" in str(source):
            raise OSError("the machine stopped here")
        return replace(source, target)

    monkeypatch.setattr(os, "replace", crash_on_arrival)
    with pytest.raises(OSError):
        store.put("bkt", "k", [b"never acknowledged"])
    monkeypatch.setattr(os, "replace", replace)
    assert store.head("bkt", "k").version_id == first
    assert b"".join(store.read("bkt", "k")) == b"acknowledged"
    assert [o.key for o in store.list("bkt")] == ["k"]  # put back in place, where listings see it
    second = store.put("bkt", "k", [b"next"]).version_id
    assert [e.info.version_id for e in store.list_versions("bkt")] == [second, first]

"""x-amz-storage-class: accepted on writes, stored, and reported by HeadObject, GetObject and listings."""

from __future__ import annotations

import botocore.exceptions
import pytest

CLASSES = ["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER",
           "DEEP_ARCHIVE", "REDUCED_REDUNDANCY"]
ARCHIVED = ("GLACIER", "DEEP_ARCHIVE")


def error_of(call) -> tuple[int, str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    response = raised.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def test_every_documented_class_is_stored_and_reported(s3, bucket):
    for name in CLASSES:
        s3.put_object(Bucket=bucket, Key=name, Body=b"x", StorageClass=name)
    for name in CLASSES:
        head = s3.head_object(Bucket=bucket, Key=name)
        if name == "STANDARD":  # S3 leaves the header out for STANDARD
            assert "StorageClass" not in head and "StorageClass" not in s3.get_object(Bucket=bucket, Key=name)
        else:
            assert head["StorageClass"] == name
        if name not in ARCHIVED and name != "STANDARD":
            assert s3.get_object(Bucket=bucket, Key=name)["StorageClass"] == name
    listed = {o["Key"]: o["StorageClass"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert listed == {name: name for name in CLASSES}
    assert {o["Key"]: o["StorageClass"] for o in s3.list_objects(Bucket=bucket)["Contents"]} == listed


def test_an_object_written_without_a_class_is_standard(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert "StorageClass" not in s3.head_object(Bucket=bucket, Key="k")
    assert s3.list_objects_v2(Bucket=bucket)["Contents"][0]["StorageClass"] == "STANDARD"


def test_an_unknown_class_is_refused_and_nothing_is_written(s3, bucket):
    assert error_of(lambda: s3.put_object(Bucket=bucket, Key="k", Body=b"x", StorageClass="COLD")) == (
        400, "InvalidStorageClass", "The storage class you specified is not valid")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    assert error_of(lambda: s3.create_multipart_upload(Bucket=bucket, Key="m", StorageClass="COLD"))[1] == (
        "InvalidStorageClass")
    s3.put_object(Bucket=bucket, Key="src", Body=b"x")
    assert error_of(lambda: s3.copy_object(Bucket=bucket, Key="dst", CopySource=f"{bucket}/src",
                                           StorageClass="COLD"))[1] == "InvalidStorageClass"


def test_a_copy_takes_the_class_it_asks_for_else_standard(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"x", StorageClass="STANDARD_IA")
    s3.copy_object(Bucket=bucket, Key="plain", CopySource=f"{bucket}/src")
    assert "StorageClass" not in s3.head_object(Bucket=bucket, Key="plain")
    s3.copy_object(Bucket=bucket, Key="cold", CopySource=f"{bucket}/src", StorageClass="GLACIER_IR")
    assert s3.head_object(Bucket=bucket, Key="cold")["StorageClass"] == "GLACIER_IR"
    # Changing only the class of an object in place is a legal copy onto itself.
    s3.copy_object(Bucket=bucket, Key="src", CopySource=f"{bucket}/src", StorageClass="ONEZONE_IA")
    assert s3.head_object(Bucket=bucket, Key="src")["StorageClass"] == "ONEZONE_IA"
    assert s3.get_object(Bucket=bucket, Key="src")["Body"].read() == b"x"


def test_a_multipart_upload_keeps_its_class_and_tags(s3, bucket):
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big", StorageClass="INTELLIGENT_TIERING",
                                        Tagging="team=ml")
    assert s3.list_multipart_uploads(Bucket=bucket)["Uploads"][0]["StorageClass"] == "INTELLIGENT_TIERING"
    part = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload["UploadId"], PartNumber=1, Body=b"abc")
    assert s3.list_parts(Bucket=bucket, Key="big", UploadId=upload["UploadId"])["StorageClass"] == (
        "INTELLIGENT_TIERING")
    s3.complete_multipart_upload(Bucket=bucket, Key="big", UploadId=upload["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    assert s3.head_object(Bucket=bucket, Key="big")["StorageClass"] == "INTELLIGENT_TIERING"
    assert s3.get_object_tagging(Bucket=bucket, Key="big")["TagSet"] == [{"Key": "team", "Value": "ml"}]


@pytest.mark.parametrize("archive", ARCHIVED)
def test_an_archived_object_is_read_only_once_restored(s3, bucket, archive):
    s3.put_object(Bucket=bucket, Key="cold", Body=b"frozen", StorageClass=archive)
    assert error_of(lambda: s3.get_object(Bucket=bucket, Key="cold")) == (
        403, "InvalidObjectState", "The operation is not valid for the object's storage class")
    assert error_of(lambda: s3.copy_object(Bucket=bucket, Key="copy", CopySource=f"{bucket}/cold"))[:2] == (
        403, "InvalidObjectState")
    assert "Restore" not in s3.head_object(Bucket=bucket, Key="cold")
    answer = s3.restore_object(Bucket=bucket, Key="cold", RestoreRequest={
        "Days": 2, "GlacierJobParameters": {"Tier": "Bulk"}})
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    head = s3.head_object(Bucket=bucket, Key="cold")
    assert head["StorageClass"] == archive
    assert head["Restore"].startswith('ongoing-request="false", expiry-date="')
    assert s3.get_object(Bucket=bucket, Key="cold")["Body"].read() == b"frozen"
    s3.copy_object(Bucket=bucket, Key="thawed", CopySource=f"{bucket}/cold")
    assert s3.get_object(Bucket=bucket, Key="thawed")["Body"].read() == b"frozen"
    again = s3.restore_object(Bucket=bucket, Key="cold", RestoreRequest={"Days": 5})
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200  # extends the restored copy's life


def test_restore_is_refused_where_s3_refuses_it(s3, bucket):
    s3.put_object(Bucket=bucket, Key="warm", Body=b"x", StorageClass="STANDARD_IA")
    assert error_of(lambda: s3.restore_object(Bucket=bucket, Key="warm", RestoreRequest={"Days": 1})) == (
        403, "InvalidObjectState", "Restore is not allowed for the object's current storage class")
    s3.put_object(Bucket=bucket, Key="cold", Body=b"x", StorageClass="GLACIER")
    assert error_of(lambda: s3.restore_object(Bucket=bucket, Key="cold", RestoreRequest={}))[:2] == (
        400, "MalformedXML")
    assert error_of(lambda: s3.restore_object(Bucket=bucket, Key="missing", RestoreRequest={"Days": 1}))[:2] == (
        404, "NoSuchKey")

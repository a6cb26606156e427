"""Encryption at rest in the lake: SSE-S3 and SSE-KMS through S3, unreadable from the lake folder's bytes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

PLAIN = b"customer_id,amount\n" + b"".join(b"%08d,secret-%d\n" % (i, i) for i in range(20000))  # ~440 KB


def _stored(server, bucket: str, key: str) -> bytes:
    """The bytes the lake folder keeps for an object."""
    return (Path(server.home) / "lake" / bucket / key / "@data").read_bytes()


def _kms_key(kms) -> str:
    return kms.create_key()["KeyMetadata"]["Arn"]


def test_sse_s3_object_is_sealed_on_disk_and_whole_and_ranged_reads_open_it(s3, server, bucket):
    answer = s3.put_object(Bucket=bucket, Key="data.csv", Body=PLAIN, ServerSideEncryption="AES256")
    assert answer["ServerSideEncryption"] == "AES256"
    stored = _stored(server, bucket, "data.csv")
    assert b"secret-" not in stored and b"customer_id" not in stored and len(stored) > len(PLAIN)
    head = s3.head_object(Bucket=bucket, Key="data.csv")
    assert (head["ServerSideEncryption"], head["ContentLength"]) == ("AES256", len(PLAIN))
    assert s3.get_object(Bucket=bucket, Key="data.csv")["Body"].read() == PLAIN
    # A range across chunk boundaries, one inside a chunk, and a suffix range.
    for first, last in ((65530, 200000), (10, 20), (len(PLAIN) - 7, len(PLAIN) - 1)):
        got = s3.get_object(Bucket=bucket, Key="data.csv", Range=f"bytes={first}-{last}")["Body"].read()
        assert got == PLAIN[first:last + 1]
    assert s3.get_object(Bucket=bucket, Key="data.csv", Range="bytes=-5")["Body"].read() == PLAIN[-5:]


def test_sse_kms_under_a_named_key_and_under_the_default_aws_s3_key(s3, kms, server, bucket):
    key_arn = _kms_key(kms)
    answer = s3.put_object(Bucket=bucket, Key="k.csv", Body=PLAIN, ServerSideEncryption="aws:kms",
                           SSEKMSKeyId=key_arn.rsplit("/", 1)[1])
    assert (answer["ServerSideEncryption"], answer["SSEKMSKeyId"]) == ("aws:kms", key_arn)
    assert b"secret-" not in _stored(server, bucket, "k.csv")
    got = s3.get_object(Bucket=bucket, Key="k.csv")
    assert (got["SSEKMSKeyId"], got["Body"].read()) == (key_arn, PLAIN)
    s3.put_object(Bucket=bucket, Key="default.csv", Body=b"abc", ServerSideEncryption="aws:kms")
    default = kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    assert default["KeyManager"] == "AWS"
    assert s3.head_object(Bucket=bucket, Key="default.csv")["SSEKMSKeyId"] == default["Arn"]
    assert "alias/aws/s3" in [a["AliasName"] for a in kms.list_aliases()["Aliases"]]


def test_an_unknown_kms_key_is_refused_as_s3_answers(s3, bucket):
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="x", Body=b"x", ServerSideEncryption="aws:kms",
                      SSEKMSKeyId="00000000-0000-4000-8000-000000000000")
    assert (info.value.response["Error"]["Code"], info.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "KMS.NotFoundException", 400)
    with pytest.raises(ClientError) as info:
        s3.put_object(Bucket=bucket, Key="x", Body=b"x", ServerSideEncryption="rot13")
    assert info.value.response["Error"]["Code"] == "InvalidArgument"


def test_a_disabled_key_refuses_reads_of_its_objects(s3, kms, bucket):
    key_arn = _kms_key(kms)
    s3.put_object(Bucket=bucket, Key="k", Body=b"payload", ServerSideEncryption="aws:kms", SSEKMSKeyId=key_arn)
    kms.disable_key(KeyId=key_arn)
    with pytest.raises(ClientError) as info:
        s3.get_object(Bucket=bucket, Key="k")
    assert info.value.response["Error"]["Code"] == "KMS.DisabledException"
    kms.enable_key(KeyId=key_arn)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"payload"


def test_multipart_upload_is_encrypted_parts_and_all(s3, kms, server, bucket):
    key_arn = _kms_key(kms)
    part = os.urandom(16) + b"secret-part" * (5 * 1024 * 1024 // 11 + 1)
    created = s3.create_multipart_upload(Bucket=bucket, Key="big.bin", ServerSideEncryption="aws:kms",
                                         SSEKMSKeyId=key_arn)
    assert created["SSEKMSKeyId"] == key_arn
    upload_id = created["UploadId"]
    etags = []
    for number, body in ((1, part), (2, b"tail-secret-part")):
        sent = s3.upload_part(Bucket=bucket, Key="big.bin", UploadId=upload_id, PartNumber=number, Body=body)
        assert sent["ServerSideEncryption"] == "aws:kms"
        etags.append({"PartNumber": number, "ETag": sent["ETag"]})
    staged = list((Path(server.home) / "lake" / ".staging" / "multipart" / upload_id).glob("*.part"))
    assert staged and all(b"secret-part" not in p.read_bytes() for p in staged)
    done = s3.complete_multipart_upload(Bucket=bucket, Key="big.bin", UploadId=upload_id,
                                        MultipartUpload={"Parts": etags})
    assert done["SSEKMSKeyId"] == key_arn
    assert b"secret-part" not in _stored(server, bucket, "big.bin")
    whole = part + b"tail-secret-part"
    assert s3.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == whole
    got = s3.get_object(Bucket=bucket, Key="big.bin", Range="bytes=5242870-5242900")["Body"].read()
    assert got == whole[5242870:5242901]


def test_bucket_default_encryption_applies_to_new_objects_and_copies(s3, kms, server, bucket):
    with pytest.raises(ClientError) as info:
        s3.get_bucket_encryption(Bucket=bucket)
    assert info.value.response["Error"]["Code"] == "ServerSideEncryptionConfigurationNotFoundError"
    key_arn = _kms_key(kms)
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}}]})
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
    s3.put_object(Bucket=bucket, Key="auto", Body=b"secret-auto")
    assert s3.head_object(Bucket=bucket, Key="auto")["SSEKMSKeyId"] == key_arn
    assert b"secret-auto" not in _stored(server, bucket, "auto")
    # A copy is written under the target's encryption, whatever the source's was.
    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource=f"{bucket}/auto", ServerSideEncryption="AES256")
    assert copied["ServerSideEncryption"] == "AES256"
    assert s3.get_object(Bucket=bucket, Key="copy")["Body"].read() == b"secret-auto"
    # Copying an object onto itself is allowed when it changes the object's encryption.
    s3.copy_object(Bucket=bucket, Key="auto", CopySource=f"{bucket}/auto", ServerSideEncryption="AES256")
    assert s3.head_object(Bucket=bucket, Key="auto")["ServerSideEncryption"] == "AES256"
    s3.delete_bucket_encryption(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="plain", Body=b"visible")
    assert "ServerSideEncryption" not in s3.head_object(Bucket=bucket, Key="plain")
    assert _stored(server, bucket, "plain") == b"visible"
    with pytest.raises(ClientError) as info:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/none"}}]})
    assert info.value.response["Error"]["Code"] == "KMS.NotFoundException"


def test_download_file_reads_an_encrypted_object_in_ranges(s3, tmp_path, bucket):
    from boto3.s3.transfer import TransferConfig

    s3.put_object(Bucket=bucket, Key="d.csv", Body=PLAIN, ServerSideEncryption="AES256")
    target = tmp_path / "d.csv"
    s3.download_file(bucket, "d.csv", str(target),
                     Config=TransferConfig(multipart_threshold=100_000, multipart_chunksize=100_000))
    assert target.read_bytes() == PLAIN


def test_bucket_default_encryption_also_covers_writes_made_inside_sagelab(s3, athena, glue, server, bucket):
    from conftest import unique
    from lake_helpers import select

    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    database = unique("defaults").replace("-", "_")
    glue.create_database(DatabaseInput={"Name": database})
    select(athena, "SELECT 'athena-result-secret' AS word", database, f"s3://{bucket}/results/")
    results = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="results/")["Contents"]]
    assert results
    for key in results:  # Athena wrote them, not a client: the bucket's default applied all the same
        assert s3.head_object(Bucket=bucket, Key=key)["ServerSideEncryption"] == "AES256"
        assert b"athena-result-secret" not in _stored(server, bucket, key)

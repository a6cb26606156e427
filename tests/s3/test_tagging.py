"""Object and bucket tagging through boto3: the tag sets, the headers, S3's limits and errors."""

from __future__ import annotations

import json
import uuid

import botocore.config
import botocore.exceptions
import pytest


def error_of(call) -> tuple[int, str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    response = raised.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"], response["Error"]["Message"]


def tag_set(**tags: str) -> dict:
    return {"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}


def test_object_tags_are_put_read_and_deleted(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a.csv", Body=b"1")
    assert s3.get_object_tagging(Bucket=bucket, Key="a.csv")["TagSet"] == []
    assert "TagCount" not in s3.head_object(Bucket=bucket, Key="a.csv")
    s3.put_object_tagging(Bucket=bucket, Key="a.csv", Tagging=tag_set(team="ml", stage="raw data"))
    assert s3.get_object_tagging(Bucket=bucket, Key="a.csv")["TagSet"] == [
        {"Key": "team", "Value": "ml"}, {"Key": "stage", "Value": "raw data"}]
    assert s3.head_object(Bucket=bucket, Key="a.csv")["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "2"
    assert s3.get_object(Bucket=bucket, Key="a.csv")["TagCount"] == 2
    assert s3.get_object(Bucket=bucket, Key="a.csv")["Body"].read() == b"1"  # the bytes are untouched
    s3.delete_object_tagging(Bucket=bucket, Key="a.csv")
    assert s3.get_object_tagging(Bucket=bucket, Key="a.csv")["TagSet"] == []


def test_tags_go_when_the_object_goes(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"1", Tagging="a=1")
    s3.delete_object(Bucket=bucket, Key="k")
    s3.put_object(Bucket=bucket, Key="k", Body=b"2")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == []
    assert error_of(lambda: s3.get_object_tagging(Bucket=bucket, Key="missing"))[:2] == (404, "NoSuchKey")
    assert error_of(lambda: s3.put_object_tagging(Bucket=bucket, Key="missing", Tagging=tag_set(a="1")))[:2] == (
        404, "NoSuchKey")


def test_put_object_takes_tags_in_a_header(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"1", Tagging="project=churn&owner=a%20b&empty=")
    assert s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"] == [
        {"Key": "project", "Value": "churn"}, {"Key": "owner", "Value": "a b"}, {"Key": "empty", "Value": ""}]
    assert s3.head_object(Bucket=bucket, Key="k")["ResponseMetadata"]["HTTPHeaders"]["x-amz-tagging-count"] == "3"


def test_copy_object_copies_or_replaces_tags(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"1", Tagging="a=1&b=2")
    s3.copy_object(Bucket=bucket, Key="copied", CopySource={"Bucket": bucket, "Key": "src"})
    assert len(s3.get_object_tagging(Bucket=bucket, Key="copied")["TagSet"]) == 2
    s3.copy_object(Bucket=bucket, Key="replaced", CopySource={"Bucket": bucket, "Key": "src"},
                   TaggingDirective="REPLACE", Tagging="c=3")
    assert s3.get_object_tagging(Bucket=bucket, Key="replaced")["TagSet"] == [{"Key": "c", "Value": "3"}]
    s3.copy_object(Bucket=bucket, Key="bare", CopySource={"Bucket": bucket, "Key": "src"},
                   TaggingDirective="REPLACE")
    assert s3.get_object_tagging(Bucket=bucket, Key="bare")["TagSet"] == []


def test_object_tag_limits(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"1")
    eleven = {f"k{i}": "v" for i in range(11)}
    assert error_of(lambda: s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(**eleven))) == (
        400, "BadRequest", "Object tags cannot be greater than 10")
    assert error_of(lambda: s3.put_object(Bucket=bucket, Key="k2", Body=b"1", Tagging="&".join(
        f"k{i}=v" for i in range(11))))[:2] == (400, "BadRequest")
    s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(**{f"k{i}": "v" for i in range(10)}))
    assert error_of(lambda: s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(**{"x" * 129: "v"}))) == (
        400, "InvalidTag", "The TagKey you have provided is too long, max 128")
    assert error_of(lambda: s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(k="v" * 257))) == (
        400, "InvalidTag", "The TagValue you have provided is too long, max 256")
    twice = {"TagSet": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]}
    assert error_of(lambda: s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=twice)) == (
        400, "InvalidTag", "Cannot provide multiple Tags with the same key")
    assert error_of(lambda: s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(**{"aws:x": "1"})))[1] == (
        "InvalidTag")
    assert error_of(lambda: s3.put_object_tagging(Bucket=bucket, Key="k", Tagging=tag_set(k="semi;colon")))[:2] == (
        400, "InvalidTag")
    assert error_of(lambda: s3.put_object(Bucket=bucket, Key="k3", Body=b"1", Tagging="a=1&a=2"))[:2] == (
        400, "InvalidArgument")
    assert len(s3.get_object_tagging(Bucket=bucket, Key="k")["TagSet"]) == 10  # refused sets changed nothing


def test_bucket_tags(s3, bucket):
    assert error_of(lambda: s3.get_bucket_tagging(Bucket=bucket)) == (404, "NoSuchTagSet", "The TagSet does not exist")
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set(CostCenter="42", env="dev"))
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [
        {"Key": "CostCenter", "Value": "42"}, {"Key": "env", "Value": "dev"}]
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set(env="prod"))  # a put replaces the whole set
    assert s3.get_bucket_tagging(Bucket=bucket)["TagSet"] == [{"Key": "env", "Value": "prod"}]
    s3.delete_bucket_tagging(Bucket=bucket)
    assert error_of(lambda: s3.get_bucket_tagging(Bucket=bucket))[1] == "NoSuchTagSet"


def test_bucket_tag_limits_and_missing_bucket(s3, bucket):
    many = tag_set(**{f"k{i}": "v" for i in range(51)})
    assert error_of(lambda: s3.put_bucket_tagging(Bucket=bucket, Tagging=many)) == (
        400, "BadRequest", "Bucket tag count cannot be greater than 50")
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set(**{f"k{i}": "v" for i in range(50)}))
    assert error_of(lambda: s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set(**{"aws:cost": "1"}))) == (
        400, "InvalidTag", "System tags cannot be added/updated by requester")
    assert error_of(lambda: s3.get_bucket_tagging(Bucket="no-such-bucket-here"))[:2] == (404, "NoSuchBucket")
    assert error_of(lambda: s3.put_bucket_tagging(Bucket="no-such-bucket-here", Tagging=tag_set(a="1")))[1] == (
        "NoSuchBucket")


def test_a_bucket_made_again_has_no_tags(s3, bucket):
    s3.put_bucket_tagging(Bucket=bucket, Tagging=tag_set(a="1"))
    s3.delete_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=bucket)
    assert error_of(lambda: s3.get_bucket_tagging(Bucket=bucket))[1] == "NoSuchTagSet"


def test_tagging_a_new_object_needs_put_object_tagging_too(server, s3, bucket):
    iam = server.client("iam")
    name = f"tagger-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    statement = {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObjectTagging"],
                 "Resource": f"arn:aws:s3:::{bucket}/*"}
    iam.put_user_policy(UserName=name, PolicyName="p",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    user_s3 = server.client("s3", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                            config=botocore.config.Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
    user_s3.put_object(Bucket=bucket, Key="plain", Body=b"1")
    status, code, message = error_of(lambda: user_s3.put_object(Bucket=bucket, Key="tagged", Body=b"1", Tagging="a=1"))
    assert (status, code) == (403, "AccessDenied") and "s3:PutObjectTagging" in message
    assert error_of(lambda: user_s3.put_object_tagging(Bucket=bucket, Key="plain", Tagging=tag_set(a="1")))[1] == (
        "AccessDenied")
    assert user_s3.get_object_tagging(Bucket=bucket, Key="plain")["TagSet"] == []

"""STS (query protocol), S3's bucket-owner check, and clear errors for anything sagelab does not answer."""

from __future__ import annotations

import botocore.config
import botocore.exceptions
import pytest
from conftest import unique
from helpers import signed_request

from sagelab.client_setup import default_bucket, sdk_config_path

NO_RETRY = botocore.config.Config(retries={"max_attempts": 1})


def _error(call) -> dict:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    response = raised.value.response
    return {"status": response["ResponseMetadata"]["HTTPStatusCode"], **response["Error"]}


def test_get_caller_identity_names_the_servers_account_and_root(server, s3):
    sts = server.client("sts")
    identity = sts.get_caller_identity()
    account = identity["Account"]
    assert len(account) == 12 and account.isdigit()
    assert identity["Arn"] == f"arn:aws:iam::{account}:root"
    assert identity["UserId"] == account
    assert sts.get_caller_identity()["Account"] == account  # stable
    assert s3.list_buckets()["Owner"]["ID"] == account  # the account every other face answers for
    assert sts.get_access_key_info(AccessKeyId=server.credentials()[0])["Account"] == account


def test_the_sdk_defaults_file_names_the_default_bucket_the_sdk_would_choose(server):
    account = server.client("sts").get_caller_identity()["Account"]
    text = sdk_config_path(server.home).read_text()
    assert f'"DefaultS3Bucket": "{default_bucket("us-east-1", account)}"' in text
    assert f"sagemaker-us-east-1-{account}" in text
    assert '"TelemetryOptOut": true' in text


def test_sts_operations_sagelab_lacks_answer_invalid_action_naming_them(server):
    sts = server.client("sts", config=NO_RETRY)
    error = _error(lambda: sts.get_federation_token(Name="demo"))
    assert error["status"] == 400 and error["Code"] == "InvalidAction"
    assert "GetFederationToken" in error["Message"]


def test_a_query_request_with_another_api_version_is_refused(server):
    akid, secret = server.credentials()
    status, body, _ = signed_request(server.url, service="sts", region="us-east-1", access_key=akid, secret=secret,
                                     body=b"Action=GetCallerIdentity&Version=2099-01-01",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400
    assert b"<Code>ValidationException</Code>" in body and b"2011-06-15" in body


@pytest.mark.parametrize(("service", "call", "operation"), [
    ("sns", lambda c: c.list_topics(), "ListTopics"),  # query protocol
    ("ecr", lambda c: c.describe_repositories(), "DescribeRepositories"),  # JSON 1.1
    ("lambda", lambda c: c.list_functions(), "GET /2015-03-31/functions"),  # REST-JSON
    ("sagemaker", lambda c: c.list_algorithms(), "ListAlgorithms"),  # a face without that operation
    ("logs", lambda c: c.create_log_group(logGroupName="/mine"), "CreateLogGroup"),
])
def test_anything_unanswered_is_a_400_naming_the_operation_never_a_500(server, service, call, operation):
    error = _error(lambda: call(server.client(service, config=NO_RETRY)))
    assert error["status"] == 400
    assert error["Code"] == "UnknownOperationException"
    assert operation in error["Message"]


def test_s3_refuses_a_bucket_owned_by_another_account_than_expected(server, s3):
    bucket = unique("owned")
    s3.create_bucket(Bucket=bucket)
    account = server.client("sts").get_caller_identity()["Account"]
    s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v", ExpectedBucketOwner=account)
    assert _error(lambda: s3.head_bucket(Bucket=bucket, ExpectedBucketOwner="111111111111"))["status"] == 403
    denied = _error(lambda: s3.get_object(Bucket=bucket, Key="k", ExpectedBucketOwner="111111111111"))
    assert denied["Code"] == "AccessDenied" and denied["status"] == 403

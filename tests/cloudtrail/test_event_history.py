"""CloudTrail's event history through a real boto3 client: what is recorded, how, and what never is."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError
from conftest import unique


def _events(cloudtrail, **lookup) -> list[dict]:
    return cloudtrail.lookup_events(**lookup)["Events"]


def _find(cloudtrail, name: str, value: str, key: str = "EventName") -> list[dict]:
    return [json.loads(e["CloudTrailEvent"]) for e in _events(cloudtrail, LookupAttributes=[
        {"AttributeKey": key, "AttributeValue": value}], MaxResults=50) if name in (e["EventName"], "*")]


def test_a_management_call_is_recorded_with_cloudtrails_fields(s3, cloudtrail, server):
    bucket = unique("trail-rec")
    answer = s3.create_bucket(Bucket=bucket)
    records = _find(cloudtrail, "CreateBucket", bucket, key="ResourceName")
    assert len(records) == 1
    record = records[0]
    account = record["recipientAccountId"]
    akid, _ = server.credentials()
    assert record["userIdentity"] == {"type": "Root", "principalId": account, "arn": f"arn:aws:iam::{account}:root",
                                      "accountId": account, "accessKeyId": akid}
    assert (record["eventSource"], record["eventName"], record["awsRegion"], record["eventType"]) == (
        "s3.amazonaws.com", "CreateBucket", "us-east-1", "AwsApiCall")
    assert (record["readOnly"], record["managementEvent"], record["eventCategory"]) == (False, True, "Management")
    assert record["requestParameters"] == {"bucketName": bucket, "Host": f"127.0.0.1:{server.port}"}
    assert record["requestID"] == answer["ResponseMetadata"]["RequestId"]
    assert record["sourceIPAddress"] == "127.0.0.1" and "Boto3" in record["userAgent"]
    assert record["eventVersion"] and record["eventID"] and record["eventTime"].endswith("Z")
    assert "errorCode" not in record


def test_a_failed_call_carries_its_error_and_reads_have_no_response_elements(sm, cloudtrail):
    name = unique("missing-job")
    with pytest.raises(ClientError):
        sm.describe_training_job(TrainingJobName=name)
    [record] = [r for r in _find(cloudtrail, "DescribeTrainingJob", "DescribeTrainingJob")
                if r["requestParameters"] == {"trainingJobName": name}]
    assert record["errorCode"] == "ValidationException" and name in record["errorMessage"]
    assert record["readOnly"] is True and record["responseElements"] is None
    assert record["eventSource"] == "sagemaker.amazonaws.com"


def test_management_writes_carry_response_elements_and_never_secrets(kms, cloudtrail):
    key = kms.create_key(Description="audited")["KeyMetadata"]
    kms.encrypt(KeyId=key["KeyId"], Plaintext=b"top-secret-plaintext", EncryptionContext={"why": "audit"})
    [created] = [r for r in _find(cloudtrail, "CreateKey", "CreateKey")
                 if (r["responseElements"] or {}).get("keyMetadata", {}).get("keyId") == key["KeyId"]]
    assert created["requestParameters"] == {"description": "audited"}
    [encrypt] = [r for r in _find(cloudtrail, "Encrypt", "Encrypt") if r["requestParameters"]["keyId"] == key["KeyId"]]
    assert encrypt["requestParameters"] == {"keyId": key["KeyId"], "encryptionContext": {"why": "audit"}}
    assert encrypt["readOnly"] is True and encrypt["responseElements"] is None
    assert "top-secret" not in json.dumps(encrypt) and "CiphertextBlob" not in json.dumps(encrypt)


def test_invoke_endpoint_and_log_reads_are_never_recorded(server, cloudtrail):
    runtime = server.client("sagemaker-runtime")
    logs = server.client("logs")
    endpoint = unique("never-recorded")
    with pytest.raises(ClientError):
        runtime.invoke_endpoint(EndpointName=endpoint, Body=b"1,2", ContentType="text/csv")
    with pytest.raises(ClientError):
        logs.get_log_events(logGroupName="/aws/sagemaker/Endpoints", logStreamName=endpoint)
    logs.describe_log_groups()  # a management read: recorded, and committed after the two calls above
    assert _find(cloudtrail, "DescribeLogGroups", "DescribeLogGroups")
    for name in ("InvokeEndpoint", "GetLogEvents", "FilterLogEvents"):
        assert _find(cloudtrail, name, name) == []


def test_lookup_is_newest_first_paginated_and_filtered(s3, cloudtrail):
    names = [unique("order") for _ in range(3)]
    for name in names:
        s3.create_bucket(Bucket=name)
    newest = [json.loads(e["CloudTrailEvent"])["requestParameters"]["bucketName"]
              for e in _events(cloudtrail, LookupAttributes=[{"AttributeKey": "EventName",
                                                              "AttributeValue": "CreateBucket"}], MaxResults=3)]
    assert newest == names[::-1]
    pages = cloudtrail.get_paginator("lookup_events").paginate(
        LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "s3.amazonaws.com"}],
        PaginationConfig={"PageSize": 2, "MaxItems": 3})
    seen = [e["EventId"] for page in pages for e in page["Events"]]
    assert len(seen) == len(set(seen)) == 3
    event = _events(cloudtrail, LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": seen[0]}])
    assert [e["EventId"] for e in event] == [seen[0]]
    assert event[0]["Username"] == "root" and event[0]["ReadOnly"] == "false"
    assert all(e["ReadOnly"] == "true" for e in _events(cloudtrail, LookupAttributes=[
        {"AttributeKey": "ReadOnly", "AttributeValue": "true"}]))
    future = time.time() + 3600
    assert _events(cloudtrail, StartTime=future) == []
    with pytest.raises(ClientError) as info:
        _events(cloudtrail, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "a"},
                                              {"AttributeKey": "Username", "AttributeValue": "b"}])
    assert info.value.response["Error"]["Code"] == "InvalidLookupAttributesException"


def test_an_iam_users_call_is_recorded_with_its_identity_and_refusals_with_their_error(server, cloudtrail):
    iam = server.client("iam")
    user_name = unique("audited-user")
    arn = iam.create_user(UserName=user_name)["User"]["Arn"]
    key = iam.create_access_key(UserName=user_name)["AccessKey"]
    sm = server.client("sagemaker", aws_access_key_id=key["AccessKeyId"],
                       aws_secret_access_key=key["SecretAccessKey"])
    with pytest.raises(ClientError):  # a user without policies is refused
        sm.list_models()
    [record] = [r for r in _find(cloudtrail, "ListModels", user_name, key="Username")]
    identity = record["userIdentity"]
    assert (identity["type"], identity["arn"], identity["userName"], identity["accessKeyId"]) == (
        "IAMUser", arn, user_name, key["AccessKeyId"])
    assert identity["principalId"].startswith("AIDA")
    assert record["errorCode"] == "AccessDeniedException" and "sagemaker:ListModels" in record["errorMessage"]


def test_every_recorded_resource_type_spells_its_service_as_aws_does():
    from sagelab.api.audit import resource_type
    from sagelab.api.faces import operation_tables
    from sagelab.api.operations import ANY, Audit

    spelled = {"SageMaker", "S3", "Glue", "Athena", "Logs", "KMS", "CloudTrail", "STS", "IAM", "Kinesis",
               "KinesisFirehose", "KinesisAnalytics", "CloudWatch", "DMS"}
    services = {resource_type(table, op.resource).split("::")[1] for table in operation_tables()
                for op in table.operations if op.audit is not Audit.NOT_RECORDED and op.resource != ANY}
    assert services <= spelled, services - spelled

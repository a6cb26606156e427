"""CloudWatch Logs over job and endpoint logs, driven by a real boto3 `logs` client."""

from __future__ import annotations

import botocore.exceptions
import pytest
from conftest import unique
from helpers import job_request, upload_breast_cancer, wait_job

TRAINING = "/aws/sagemaker/TrainingJobs"
XGB = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


@pytest.fixture(scope="module")
def logs(server):
    return server.client("logs")


@pytest.fixture(scope="module")
def job(sm, s3, server, tmp_path_factory):
    bucket = unique("logs")
    s3.create_bucket(Bucket=bucket)
    upload_breast_cancer(s3, bucket, tmp_path_factory.mktemp("data"))
    name = unique("logged")
    sm.create_training_job(**job_request(name, "xgboost", bucket, {
        "objective": "binary:logistic", "num_round": "12", "max_depth": "2", "eval_metric": "auc"}))
    desc = wait_job(sm, name)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    text = (server.home / "logs" / "TrainingJobs" / f"{name}.log").read_text()
    return {"name": name, "desc": desc, "lines": text.splitlines(), "bucket": bucket}


def _stream(logs, job) -> str:
    streams = logs.describe_log_streams(logGroupName=TRAINING, logStreamNamePrefix=job["name"] + "/",
                                        orderBy="LogStreamName", limit=1)["logStreams"]
    assert len(streams) == 1
    return streams[0]["logStreamName"]


def _code(error: botocore.exceptions.ClientError) -> str:
    return error.response["Error"]["Code"]


@pytest.mark.slow
def test_a_training_job_has_sagemakers_log_group_and_stream(logs, job):
    groups = [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/aws/sagemaker/")["logGroups"]]
    assert TRAINING in groups
    stream = logs.describe_log_streams(logGroupName=TRAINING, logStreamNamePrefix=job["name"] + "/")["logStreams"][0]
    created = job["desc"]["CreationTime"].timestamp()
    name, _, epoch = stream["logStreamName"].rpartition("-")
    assert name == f"{job['name']}/algo-1"
    assert created - 1 <= int(epoch) <= job["desc"]["TrainingEndTime"].timestamp()
    assert stream["firstEventTimestamp"] <= stream["lastEventTimestamp"]
    assert stream["arn"].endswith(f":log-group:{TRAINING}:log-stream:{stream['logStreamName']}")


@pytest.mark.slow
def test_reading_forward_from_the_head_returns_every_line_once_then_stops(logs, job):
    stream, events, token, pages = _stream(logs, job), [], None, 0
    while True:
        kwargs = {"nextToken": token} if token else {}
        page = logs.get_log_events(logGroupName=TRAINING, logStreamName=stream, startFromHead=True, limit=5,
                                   **kwargs)
        pages += 1
        if not page["events"]:
            assert page["nextForwardToken"] == token  # the end: the same token comes back
            break
        events += page["events"]
        token = page["nextForwardToken"]
    assert [e["message"] for e in events] == job["lines"]
    assert pages == -(-len(job["lines"]) // 5) + 1
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)
    start, end = job["desc"]["CreationTime"].timestamp() * 1000, job["desc"]["TrainingEndTime"].timestamp() * 1000
    assert start - 1000 <= stamps[0] and stamps[-1] <= end + 1000
    assert any(e["message"].startswith("[11]\ttrain-auc:") for e in events)


@pytest.mark.slow
def test_reading_backward_returns_the_latest_lines_and_walks_back(logs, job):
    stream = _stream(logs, job)
    latest = logs.get_log_events(logGroupName=TRAINING, logStreamName=stream, limit=3)
    assert [e["message"] for e in latest["events"]] == job["lines"][-3:]
    before = logs.get_log_events(logGroupName=TRAINING, logStreamName=stream, limit=3,
                                 nextToken=latest["nextBackwardToken"])
    assert [e["message"] for e in before["events"]] == job["lines"][-6:-3]
    assert logs.get_log_events(logGroupName=TRAINING, logStreamName=stream,
                               nextToken=latest["nextForwardToken"])["events"] == []


@pytest.mark.slow
def test_a_time_window_selects_events_by_timestamp(logs, job):
    stream = _stream(logs, job)
    events = logs.get_log_events(logGroupName=TRAINING, logStreamName=stream, startFromHead=True)["events"]
    last = events[-1]["timestamp"]
    tail = logs.get_log_events(logGroupName=TRAINING, logStreamName=stream, startFromHead=True, startTime=last)
    assert tail["events"] == [e for e in events if e["timestamp"] >= last]
    head = logs.get_log_events(logGroupName=TRAINING, logStreamName=stream, startFromHead=True, endTime=last)
    assert head["events"] == [e for e in events if e["timestamp"] < last]


@pytest.mark.slow
def test_filter_log_events_matches_terms_phrases_and_exclusions_with_pagination(logs, job):
    prefix = job["name"] + "/"
    rounds = [line for line in job["lines"] if "validation-auc" in line]
    found = logs.filter_log_events(logGroupName=TRAINING, logStreamNamePrefix=prefix,
                                   filterPattern="validation-auc")
    assert [e["message"] for e in found["events"]] == rounds
    assert "nextToken" not in found
    assert found["searchedLogStreams"] == [{"logStreamName": _stream(logs, job), "searchedCompletely": True}]
    paged, token = [], None
    while True:
        page = logs.filter_log_events(logGroupName=TRAINING, logStreamNamePrefix=prefix,
                                      filterPattern="validation-auc", limit=4, **({"nextToken": token} if token else {}))
        paged += page["events"]
        token = page.get("nextToken")
        if not token:
            break
    assert [e["eventId"] for e in paged] == [e["eventId"] for e in found["events"]]
    first = logs.filter_log_events(logGroupName=TRAINING, logStreamNamePrefix=prefix,
                                   filterPattern='"[0]\ttrain-auc"')["events"]
    assert [e["message"] for e in first] == [rounds[0]]
    without = logs.filter_log_events(logGroupName=TRAINING, logStreamNamePrefix=prefix,
                                     filterPattern="train-auc -[0]")["events"]
    assert [e["message"] for e in without] == rounds[1:]
    either = logs.filter_log_events(logGroupName=TRAINING, logStreamNamePrefix=prefix,
                                    filterPattern="?Downloading ?Uploading")["events"]
    assert [e["message"].split()[3] for e in either] == ["Downloading", "Uploading"]
    regex = logs.filter_log_events(logGroupName=TRAINING, logStreamNamePrefix=prefix,
                                   filterPattern=r"%^\[1[01]\]%")["events"]
    assert len(regex) == 2


def test_missing_groups_streams_and_bad_requests_get_cloudwatchs_errors(logs, job):
    with pytest.raises(botocore.exceptions.ClientError) as missing_group:
        logs.describe_log_streams(logGroupName="/aws/sagemaker/NoSuchJobs")
    assert _code(missing_group.value) == "ResourceNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as missing_stream:
        logs.get_log_events(logGroupName=TRAINING, logStreamName="nope/algo-1-1")
    assert _code(missing_stream.value) == "ResourceNotFoundException"
    with pytest.raises(botocore.exceptions.ClientError) as bad_token:
        logs.get_log_events(logGroupName=TRAINING, logStreamName=_stream(logs, job), nextToken="f/not-a-position")
    assert _code(bad_token.value) == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as bad_order:
        logs.describe_log_streams(logGroupName=TRAINING, logStreamNamePrefix="x", orderBy="LastEventTime")
    assert _code(bad_order.value) == "InvalidParameterException"
    with pytest.raises(botocore.exceptions.ClientError) as json_pattern:
        logs.filter_log_events(logGroupName=TRAINING, filterPattern='{ $.level = "ERROR" }')
    assert _code(json_pattern.value) == "InvalidParameterException"
    assert "plain text" in json_pattern.value.response["Error"]["Message"]


@pytest.mark.slow
def test_an_endpoint_logs_to_its_own_group_one_stream_per_instance(sm, logs, job):
    model, endpoint = unique("logmodel"), unique("logged-ep")
    sm.create_model(ModelName=model, ExecutionRoleArn="arn:aws:iam::000000000000:role/r", PrimaryContainer={
        "Image": XGB, "ModelDataUrl": job["desc"]["ModelArtifacts"]["S3ModelArtifacts"]})
    sm.create_endpoint_config(EndpointConfigName=endpoint, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=endpoint)
    try:
        sm.get_waiter("endpoint_in_service").wait(EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        group = f"/aws/sagemaker/Endpoints/{endpoint}"
        streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
        assert len(streams) == 1 and streams[0]["logStreamName"].startswith("AllTraffic/")
        # The SageMaker SDK probes live logging exactly like this.
        found = logs.filter_log_events(logGroupName=group, logStreamNamePrefix="AllTraffic/")["events"]
        assert any("loaded" in e["message"] for e in found)
    finally:
        sm.delete_endpoint(EndpointName=endpoint)
        sm.delete_endpoint_config(EndpointConfigName=endpoint)
        sm.delete_model(ModelName=model)

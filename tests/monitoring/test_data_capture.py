"""Data capture: sampled invocations land in the lake as SageMaker's JSON Lines, laid out per endpoint,
variant and hour, with the encodings CaptureContentTypeHeader asks for."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from datetime import datetime

import botocore.exceptions
import numpy as np
import pytest
from conftest import unique

from .conftest import captured_keys, csv_text, deploy_capturing, feature_rows, read_object

_KEY = re.compile(r"^(?P<prefix>.+)/(?P<endpoint>[^/]+)/AllTraffic/(?P<y>\d{4})/(?P<m>\d\d)/(?P<d>\d\d)/(?P<h>\d\d)/"
                  r"\d\d-\d\d-\d{3}-[0-9a-f-]{36}\.jsonl$")


def wait_for_records(ms3, destination: str, count: int) -> list[tuple[str, dict]]:
    bucket = destination[5:].partition("/")[0]
    for _ in range(100):
        records = [(key, json.loads(line)) for key in captured_keys(ms3, destination)
                   for line in read_object(ms3, bucket, key).decode().splitlines()]
        if len(records) >= count:
            return records
        time.sleep(0.2)
    raise AssertionError(f"expected {count} captured records under {destination}, found {len(records)}")


@pytest.mark.slow
def test_captured_requests_are_written_as_sagemaker_json_lines(msm, ms3, mrt, lab):
    endpoint, destination = deploy_capturing(msm, lab)
    summary = msm.describe_endpoint(EndpointName=endpoint)["DataCaptureConfig"]
    assert summary == {"EnableCapture": True, "CaptureStatus": "Started", "CurrentSamplingPercentage": 100,
                       "DestinationS3Uri": destination}
    body = csv_text(feature_rows(np.random.default_rng(1), 2))
    csv_answer = mrt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)["Body"].read()
    json_answer = mrt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Accept="application/json",
                                      Body=body, InferenceId="request-42")["Body"].read()
    libsvm = b"1:0.5 2:4.0 3:1"
    mrt.invoke_endpoint(EndpointName=endpoint, ContentType="text/libsvm", Body=libsvm)

    records = wait_for_records(ms3, destination, 3)
    assert len(records) == 3
    now = datetime.utcnow()
    for key, _ in records:
        match = _KEY.match(key)
        assert match, key
        assert match["prefix"] == destination.partition(f"s3://{lab['bucket']}/")[2]
        assert match["endpoint"] == endpoint
        assert abs(int(match["h"]) - now.hour) in (0, 1, 23) and match["y"] == f"{now.year:04d}"
    events = sorted((r for _, r in records), key=lambda r: r["eventMetadata"]["inferenceTime"])
    for event in events:
        assert event["eventVersion"] == "0"
        uuid.UUID(event["eventMetadata"]["eventId"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["eventMetadata"]["inferenceTime"])
    by_output = {e["captureData"]["endpointOutput"]["encoding"]: e for e in events if
                 e["captureData"]["endpointInput"]["encoding"] == "CSV"}
    csv_event, json_event = by_output["CSV"], by_output["JSON"]
    assert csv_event["captureData"]["endpointInput"] == {"observedContentType": "text/csv", "mode": "INPUT",
                                                         "data": body, "encoding": "CSV"}
    assert csv_event["captureData"]["endpointOutput"]["data"] == csv_answer.decode()
    assert csv_event["captureData"]["endpointOutput"]["mode"] == "OUTPUT"
    assert "inferenceId" not in csv_event["eventMetadata"]
    assert json_event["captureData"]["endpointOutput"]["observedContentType"] == "application/json"
    assert json.loads(json_event["captureData"]["endpointOutput"]["data"]) == json.loads(json_answer)
    assert json_event["eventMetadata"]["inferenceId"] == "request-42"
    # A content type in neither list is kept as base64.
    (binary,) = [e for e in events if e["captureData"]["endpointInput"]["encoding"] == "BASE64"]
    assert binary["captureData"]["endpointInput"]["observedContentType"] == "text/libsvm"
    assert base64.b64decode(binary["captureData"]["endpointInput"]["data"]) == libsvm
    msm.delete_endpoint(EndpointName=endpoint)


def test_sampling_zero_percent_captures_nothing(msm, ms3, mrt, lab):
    endpoint, destination = deploy_capturing(msm, lab, sampling=0)
    body = csv_text(feature_rows(np.random.default_rng(2), 1))
    for _ in range(20):
        mrt.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)
    # A capturing endpoint beside it shows when the flusher has run since (it writes both endpoints' buffers).
    witness, witness_destination = deploy_capturing(msm, lab)
    mrt.invoke_endpoint(EndpointName=witness, ContentType="text/csv", Body=body)
    wait_for_records(ms3, witness_destination, 1)
    assert captured_keys(ms3, destination) == []
    assert msm.describe_endpoint(EndpointName=endpoint)["DataCaptureConfig"]["CurrentSamplingPercentage"] == 0
    for name in (endpoint, witness):
        msm.delete_endpoint(EndpointName=name)


@pytest.mark.parametrize(("change", "named"), [
    ({"DestinationS3Uri": "bucket/no-scheme"}, "DataCaptureConfig.DestinationS3Uri"),
    ({"CaptureOptions": [{"CaptureMode": "Input"}], "InitialSamplingPercentage": 50,
      "DestinationS3Uri": "s3:///no-bucket"}, "DataCaptureConfig.DestinationS3Uri"),
])
def test_a_bad_capture_config_is_refused_naming_the_field(msm, lab, change, named):
    capture = {"EnableCapture": True, "InitialSamplingPercentage": 50, "DestinationS3Uri": "s3://b/capture",
               "CaptureOptions": [{"CaptureMode": "Input"}], **change}
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        msm.create_endpoint_config(EndpointConfigName=unique("bad"), DataCaptureConfig=capture, ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": lab["model"], "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}])
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert named.lower() in caught.value.response["Error"]["Message"].lower()


@pytest.mark.slow
def test_a_clean_shutdown_writes_what_was_captured_and_a_restart_keeps_capturing(tmp_path):
    import xgboost as xgb

    from sagelab.embedded import ServerProcess

    from .conftest import XGB, model_tarball

    home = tmp_path / "home"
    rows = feature_rows(np.random.default_rng(4), 50)
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(rows, label=rows[:, 0] > 0), num_boost_round=2)
    destination = "s3://restart/capture"
    # Flushed only at shutdown: an hour between flushes.
    first = ServerProcess(home, env={"SAGELAB_CAPTURE_FLUSH_SECONDS": "3600"}).start()
    try:
        s3, sm, rt = first.client("s3"), first.client("sagemaker"), first.client("sagemaker-runtime")
        s3.create_bucket(Bucket="restart")
        s3.put_object(Bucket="restart", Key="model.tar.gz", Body=model_tarball(bytes(booster.save_raw("json"))))
        sm.create_model(ModelName="m", ExecutionRoleArn="arn:aws:iam::000000000000:role/r", PrimaryContainer={
            "Image": XGB, "ModelDataUrl": "s3://restart/model.tar.gz"})
        sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}], DataCaptureConfig={
            "InitialSamplingPercentage": 100, "DestinationS3Uri": destination,
            "CaptureOptions": [{"CaptureMode": "InputAndOutput"}]})
        sm.create_endpoint(EndpointName="e", EndpointConfigName="c")
        sm.get_waiter("endpoint_in_service").wait(EndpointName="e", WaiterConfig={"Delay": 1, "MaxAttempts": 90})
        for i in range(5):
            rt.invoke_endpoint(EndpointName="e", ContentType="text/csv", Body=csv_text(rows[i:i + 1]))
        assert captured_keys(s3, destination) == []  # still buffered
    finally:
        first.stop()

    second = ServerProcess(home, env={"SAGELAB_CAPTURE_FLUSH_SECONDS": "0.3"}).start()
    try:
        s3, sm, rt = second.client("s3"), second.client("sagemaker"), second.client("sagemaker-runtime")
        records = wait_for_records(s3, destination, 5)
        assert len(records) == 5
        # Without CaptureContentTypeHeader everything is base64, as on AWS.
        assert {r["captureData"]["endpointInput"]["encoding"] for _, r in records} == {"BASE64"}
        for _ in range(300):  # the restarted server redeploys the endpoint's instances in the background
            try:
                rt.invoke_endpoint(EndpointName="e", ContentType="text/csv", Body=csv_text(rows[:1]))
                break
            except botocore.exceptions.ClientError:
                time.sleep(0.2)
        assert len(wait_for_records(s3, destination, 6)) == 6
    finally:
        second.stop()

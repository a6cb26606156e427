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

"""SageMaker's endpoint metrics (AWS/SageMaker) are CloudWatch metrics: ListMetrics and GetMetricStatistics
read what InvokeEndpoint recorded, from the same store."""

from __future__ import annotations

import datetime as dt
import io
import tarfile
import time

import numpy as np

XGB = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def _artifact() -> bytes:
    import xgboost as xgb

    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 3))
    booster = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(features, label=features.sum(axis=1)), 2)
    raw = bytes(booster.save_raw("json"))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    return out.getvalue()


def test_invocation_metrics_are_read_through_cloudwatch(cw_server, cw):
    s3, sm, rt = cw_server.client("s3"), cw_server.client("sagemaker"), cw_server.client("sagemaker-runtime")
    s3.create_bucket(Bucket="cw-metrics")
    s3.put_object(Bucket="cw-metrics", Key="model.tar.gz", Body=_artifact())
    sm.create_model(ModelName="cw-m", PrimaryContainer={"Image": XGB,
                                                        "ModelDataUrl": "s3://cw-metrics/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName="cw-c", ProductionVariants=[
        {"VariantName": "v1", "ModelName": "cw-m", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="cw-e", EndpointConfigName="cw-c")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="cw-e", WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    for _ in range(6):
        rt.invoke_endpoint(EndpointName="cw-e", ContentType="text/csv", Body="0.1,0.2,0.3")
    dims = [{"Name": "EndpointName", "Value": "cw-e"}, {"Name": "VariantName", "Value": "v1"}]
    window = {"Namespace": "AWS/SageMaker", "Dimensions": dims, "StartTime": start - dt.timedelta(minutes=1),
              "EndTime": start + dt.timedelta(minutes=3), "Period": 300}
    deadline = time.monotonic() + 40  # the server writes its gathered metrics every 10 s
    while True:
        points = cw.get_metric_statistics(MetricName="Invocations", Statistics=["Sum"], **window)["Datapoints"]
        if sum(p["Sum"] for p in points) >= 6:
            break
        assert time.monotonic() < deadline, points
        time.sleep(1)
    assert sum(p["Sum"] for p in points) == 6
    per_instance = cw.get_metric_statistics(MetricName="InvocationsPerInstance", Statistics=["Sum"], **window)
    assert sum(p["Sum"] for p in per_instance["Datapoints"]) == 6  # one instance
    [latency] = cw.get_metric_statistics(MetricName="ModelLatency", Statistics=["SampleCount", "Average"],
                                         **window)["Datapoints"]
    assert latency["SampleCount"] == 6 and latency["Average"] > 0 and latency["Unit"] == "Microseconds"
    [p99] = cw.get_metric_statistics(MetricName="ModelLatency", ExtendedStatistics=["p99"], **window)["Datapoints"]
    assert p99["ExtendedStatistics"]["p99"] > 0
    listed = cw.list_metrics(Namespace="AWS/SageMaker", Dimensions=[{"Name": "EndpointName", "Value": "cw-e"}])
    assert {"Invocations", "InvocationsPerInstance", "ModelLatency", "OverheadLatency"} <= {m["MetricName"] for m in listed["Metrics"]}
    sm.delete_endpoint(EndpointName="cw-e")

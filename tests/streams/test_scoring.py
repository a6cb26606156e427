"""Streaming predictions: records put on a stream are scored by a real endpoint in batches and the scores
land on another stream, one per record, matching the model's own predictions."""

from __future__ import annotations

import io
import json
import tarfile
import time
import uuid

import numpy as np
import pytest
import xgboost as xgb

from sagelab.streams.scoring import StreamScorer

ROLE = "arn:aws:iam::000000000000:role/r"


def _model_tarball(booster: xgb.Booster) -> bytes:
    raw = bytes(booster.save_raw("json"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    return buffer.getvalue()


@pytest.mark.slow
def test_a_stream_is_scored_against_an_endpoint_into_another_stream(server, s3, sm):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4)).astype(np.float32)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
                        xgb.DMatrix(x, label=(x[:, 0] > 0).astype(np.float32)), num_boost_round=10)
    bucket = f"score-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="model/model.tar.gz", Body=_model_tarball(booster))
    name = f"scorer-{uuid.uuid4().hex[:8]}"
    sm.create_model(ModelName=name, ExecutionRoleArn=ROLE, PrimaryContainer={
        "Image": "sagemaker-xgboost:1.7-1", "ModelDataUrl": f"s3://{bucket}/model/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    kinesis, runtime = server.client("kinesis"), server.client("sagemaker-runtime")
    kinesis.create_stream(StreamName=f"{name}-in", ShardCount=2)
    kinesis.create_stream(StreamName=f"{name}-out", ShardCount=1)
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    rows = x[:120]
    answer = kinesis.put_records(StreamName=f"{name}-in", Records=[
        {"PartitionKey": f"user-{i}", "Data": (",".join(f"{v:.9g}" for v in row) + "\n").encode()}
        for i, row in enumerate(rows)])
    sequence_of = {r["SequenceNumber"]: i for i, r in enumerate(answer["Records"])}
    scorer = StreamScorer(kinesis=kinesis, runtime=runtime, endpoint=name, input_stream=f"{name}-in",
                          output_stream=f"{name}-out", batch_size=50)
    assert scorer.run_once() == 120
    assert scorer.run_once() == 0  # nothing new: nothing scored twice

    iterator = kinesis.get_shard_iterator(StreamName=f"{name}-out", ShardId="shardId-000000000000",
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    out = kinesis.get_records(ShardIterator=iterator)["Records"]
    assert len(out) == 120
    expected = booster.predict(xgb.DMatrix(rows))
    for record in out:
        doc = json.loads(record["Data"])
        i = sequence_of[doc["sequenceNumber"]]
        assert record["PartitionKey"] == f"user-{i}"
        assert abs(float(doc["score"]) - float(expected[i])) < 1e-5
    started = time.monotonic()
    kinesis.put_record(StreamName=f"{name}-in", PartitionKey="late", Data=b"0,0,0,0\n")
    while scorer.run_once() == 0:  # as records arrive
        assert time.monotonic() - started < 30
    sm.delete_endpoint(EndpointName=name)

"""Malformed input to FM, RCF, IP Insights, LightGBM and CatBoost through a real server: a refused request (4xx)
or a Failed job whose FailureReason names the problem, never a hung job."""

from __future__ import annotations

import botocore.exceptions
import numpy as np
import pytest
from builtin_flow import channel, image, put, start, wait_failed
from conftest import unique
from helpers import job_request

from sagelab.algorithms.first_party.recordio import write_matrix

PROTOBUF = "application/x-recordio-protobuf"


@pytest.mark.slow
def test_bad_data_fails_each_job_with_the_reason(sm, s3, bucket):
    fm = {"feature_dim": "3", "num_factors": "2", "predictor_type": "binary_classifier"}
    rcf = {"feature_dim": "3", "num_trees": "50"}
    cases = [
        # (image, hyperparameters, channels, fragment of the FailureReason)
        (image("factorization-machines"), fm,
         [channel("train", put(s3, bucket, "fm-csv/a.csv", "1,0.5,0.2,0.1\n"), "text/csv")],
         "recordIO-protobuf with Float32 tensors only"),
        (image("factorization-machines"), {**fm, "feature_dim": "5"},
         [channel("train", put(s3, bucket, "fm-dim/a.pbr", write_matrix(np.ones((4, 3)), [0, 1, 0, 1])), PROTOBUF)],
         "feature_dim is 5"),
        (image("randomcutforest"), rcf,
         [channel("train", put(s3, bucket, "rcf-cut/a.pbr", write_matrix(np.ones((4, 3)))[:-7]), PROTOBUF)],
         "truncated"),
        (image("randomcutforest"), rcf,
         [channel("train", put(s3, bucket, "rcf-nan/a.csv", "1,2,3\n4,,6\n"), "text/csv;label_size=0")],
         "row 2: feature 2 is missing"),
        (image("ipinsights"), {"num_entity_vectors": "10", "vector_dim": "4"},
         [channel("train", put(s3, bucket, "ipi-empty/a.csv", ""))], "has no data"),
        (image("lightgbm-classification-model"), {},
         [channel("train", f"s3://{bucket}/nothing-here/")], "no objects found"),
        (image("catboost-classification-model"), {"iterations": "5"},
         [channel("training", put(s3, bucket, "cb-label/train/a.csv", "0.5,1\n1,2\n0,3\n1,4\n0,5\n"))],
         "must be non-negative integers"),
    ]
    names = [(start(sm, bucket, uri, hp, channels), fragment) for uri, hp, channels, fragment in cases]
    for name, fragment in names:
        desc = wait_failed(sm, name)
        assert desc["TrainingJobStatus"] == "Failed", (name, desc.get("FailureReason"))
        assert desc["FailureReason"].startswith("ClientError: ") and fragment in desc["FailureReason"], \
            desc["FailureReason"]


@pytest.mark.parametrize("uri, channels, fragment", [
    (image("lightgbm-classification-model"), [("train", None), ("training", None)],
     "'train' and 'training' are two names for the same"),
    (image("ipinsights"), [("train", PROTOBUF)], "ContentType 'application/x-recordio-protobuf' is not supported"),
    (image("randomcutforest"), [("validation", None)], "does not accept a channel named 'validation'"),
])
def test_impossible_channels_are_refused_at_creation(sm, bucket, uri, channels, fragment):
    hp = {"feature_dim": "3", "num_entity_vectors": "10", "vector_dim": "4"}
    schema_keys = {"ipinsights": ("num_entity_vectors", "vector_dim"), "randomcutforest": ("feature_dim",)}
    repository = uri.rsplit("/", 1)[1].split(":")[0]
    hp = {k: v for k, v in hp.items() if k in schema_keys.get(repository, ())}
    request = job_request(unique("bad"), uri, bucket, hp, channels=[
        channel(name, f"s3://{bucket}/data/", content_type) for name, content_type in channels])
    with pytest.raises(botocore.exceptions.ClientError) as info:
        sm.create_training_job(**request)
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert fragment in info.value.response["Error"]["Message"]

"""K-Means, PCA and k-NN given malformed training data: every job fails, quickly, saying what is wrong."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import wait_failed
from onep_jobs import csv_channel, protobuf_channel, put, put_protobuf, start_job
from sklearn.datasets import load_iris

from sagelab.algorithms.first_party import recordio

HYPERPARAMETERS = {
    "kmeans": {"k": "3", "feature_dim": "4"},
    "pca": {"num_components": "2", "feature_dim": "4", "mini_batch_size": "50"},
    "knn": {"k": "3", "feature_dim": "4", "predictor_type": "classifier", "sample_size": "100"},
}


@pytest.mark.slow
def test_malformed_training_data_fails_each_job_with_the_reason(sm, s3, bucket):
    x, y = load_iris(return_X_y=True)
    good = put_protobuf(s3, bucket, "good", x, y)
    truncated = put(s3, bucket, "truncated/part.pbr", recordio.write_matrix(x.astype(np.float32), y)[:-6])
    rows = [f"{label:g}," + ",".join(f"{v:g}" for v in row) for label, row in zip(y, x, strict=True)]
    rows[6] = "0,5.1,,1.4,0.2"  # the second feature of record 7 is missing
    missing = put(s3, bucket, "missing/part.csv", ("\n".join(rows) + "\n").encode())
    empty = put(s3, bucket, "empty/part.csv", b"")
    cases = {
        "wrong feature_dim": ({"feature_dim": "5"}, [protobuf_channel("train", good)], "feature_dim"),
        "truncated protobuf": ({}, [protobuf_channel("train", truncated)], "record 150"),
        "missing value": ({}, [csv_channel("train", missing)], "row 7: feature 2 is missing"),
        "empty channel": ({}, [csv_channel("train", empty)], "has no data"),
    }
    jobs = {(algorithm, case): start_job(sm, bucket, algorithm, {**hp, **extra}, channels)
            for algorithm, hp in HYPERPARAMETERS.items() for case, (extra, channels, _) in cases.items()}
    for (algorithm, case), name in jobs.items():
        desc = wait_failed(sm, name)
        reason = desc.get("FailureReason", "")
        assert desc["TrainingJobStatus"] == "Failed", (algorithm, case, desc["TrainingJobStatus"])
        assert reason.startswith("ClientError:") and cases[case][2] in reason, (algorithm, case, reason)
        assert "train" in reason, reason  # the channel is named

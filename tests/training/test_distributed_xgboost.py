"""Built-in XGBoost with InstanceCount > 1: the hosts train one model together over xgboost's collective,
each on its shard of the data."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import unique
from helpers import channel, job_request, metrics_of, wait_failed, wait_job


def _csv(rows: np.ndarray) -> bytes:
    buffer = io.StringIO()
    np.savetxt(buffer, rows, delimiter=",", fmt="%.5g")
    return buffer.getvalue().encode()


def _data(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(float)
    return np.column_stack([y, x])


def _two_host_request(name: str, bucket: str, train_uri: str, validation_uri: str) -> dict:
    request = job_request(name, "xgboost", bucket, {"objective": "binary:logistic", "num_round": "20",
                                                    "eval_metric": "auc", "max_depth": "3"},
                          channels=[channel("train", train_uri), channel("validation", validation_uri)])
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataDistributionType"] = "ShardedByS3Key"
    request["ResourceConfig"]["InstanceCount"] = 2
    return request


@pytest.mark.slow
def test_two_hosts_train_one_model_on_their_shards(server, sm, s3, bucket):
    s3.put_object(Bucket=bucket, Key="sharded/train/part-0.csv", Body=_csv(_data(1, 150)))
    s3.put_object(Bucket=bucket, Key="sharded/train/part-1.csv", Body=_csv(_data(2, 90)))
    s3.put_object(Bucket=bucket, Key="sharded/validation/v.csv", Body=_csv(_data(3, 80)))
    name = unique("xgb-two-hosts")
    sm.create_training_job(**_two_host_request(name, bucket, f"s3://{bucket}/sharded/train/",
                                               f"s3://{bucket}/sharded/validation/"))
    desc = wait_job(sm, name)
    assert desc["TrainingJobStatus"] == "Completed", desc.get("FailureReason")
    assert metrics_of(desc)["validation:auc"] >= 0.9
    log = (server.home / "logs" / "TrainingJobs" / f"{name}.log").read_text()
    assert "distributed XGBoost on 2 hosts (algo-1, algo-2)" in log
    # algo-1 (rank 0, the one that logs) read only its shard: part-0's 150 rows.
    assert "Train matrix has 150 rows" in log


def test_a_shard_too_few_objects_for_the_hosts_is_refused(sm, s3, bucket):
    s3.put_object(Bucket=bucket, Key="one/train/all.csv", Body=_csv(_data(1, 40)))
    s3.put_object(Bucket=bucket, Key="one/validation/v.csv", Body=_csv(_data(3, 20)))
    name = unique("xgb-one-shard")
    sm.create_training_job(**_two_host_request(name, bucket, f"s3://{bucket}/one/train/",
                                               f"s3://{bucket}/one/validation/"))
    desc = wait_failed(sm, name, timeout=120)
    assert desc["TrainingJobStatus"] == "Failed"
    assert desc["FailureReason"].startswith("ClientError:")
    assert "algo-2 gets none" in desc["FailureReason"]

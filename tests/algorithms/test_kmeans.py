"""K-Means: the SageMaker surface, the training log, and a real job -> endpoint cycle on iris."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from onep_jobs import (
    PROTOBUF,
    batch_transform,
    create_model,
    csv_body,
    csv_channel,
    deploy,
    invoke,
    json_body,
    metrics_of,
    model_error,
    protobuf_channel,
    protobuf_labels,
    put_csv,
    put_protobuf,
    train,
)
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris
from sklearn.metrics import adjusted_rand_score

from sagelab.algorithms.base import Channel, TrainingContext
from sagelab.algorithms.first_party import recordio
from sagelab.algorithms.kmeans.algorithm import KMeansAlgorithm
from sagelab.errors import ValidationError
from sagelab.training.metrics import extract_metrics

ALGO = KMeansAlgorithm()
DOCUMENTED = ("feature_dim", "k", "epochs", "eval_metrics", "extra_center_factor", "half_life_time_size",
              "init_method", "local_lloyd_init_method", "local_lloyd_max_iter", "local_lloyd_num_trials",
              "local_lloyd_tol", "mini_batch_size")


@pytest.fixture(scope="module")
def rt(server):
    return server.client("sagemaker-runtime")


def test_declares_the_sagemaker_surface():
    assert ALGO.image_repositories == ("kmeans",)
    # Every documented hyperparameter, plus force_dense, which the SageMaker SDK always sends.
    assert sorted(ALGO.hyperparameters.by_name()) == sorted((*DOCUMENTED, "force_dense"))
    values = ALGO.hyperparameters.validate({"k": "8", "feature_dim": "7", "force_dense": "True",
                                            "_tuning_objective_metric": "test:msd"})
    assert values["eval_metrics"] == ["msd"] and values["mini_batch_size"] == 5000 and values["epochs"] == 1
    assert values["init_method"] == "random" and values["local_lloyd_init_method"] == "kmeans++"
    for required in ("k", "feature_dim"):
        with pytest.raises(ValidationError, match=f"'{required}' is required"):
            ALGO.hyperparameters.validate({key: v for key, v in {"k": "3", "feature_dim": "4"}.items()
                                           if key != required})
    assert ALGO.hyperparameters.validate({"k": "3", "feature_dim": "4", "eval_metrics": '["ssd", "msd"]'}
                                         )["eval_metrics"] == ["ssd", "msd"]
    with pytest.raises(ValidationError, match="eval_metrics.*msd.*ssd"):
        ALGO.hyperparameters.validate({"k": "3", "feature_dim": "4", "eval_metrics": '["mse"]'})
    assert [c.name for c in ALGO.channels] == ["train", "test"]
    assert ALGO.channels[0].default_content_type == PROTOBUF


def test_metric_regexes_read_real_log_lines():
    log = ["[05/16/2021 12:27:47 INFO 140141566281536] #quality_metric: host=algo-1, train msd "
           "<loss>=0.06404909491539001",
           "[05/16/2021 12:27:47 INFO 1401] #progress_metric: host=algo-1, completed 100.0 % of epochs",
           "[05/16/2021 12:27:47 INFO 1401] #throughput_metric: host=algo-1, train throughput=54276.96 records/second",
           "#quality_metric: host=algo-1, test msd <loss>=1.5", "#quality_metric: host=algo-1, test ssd <loss>=225.0"]
    assert extract_metrics(log, ALGO.metrics) == {"train:msd": 0.06404909491539001, "train:progress": 100.0,
                                                  "train:throughput": 54276.96, "test:msd": 1.5, "test:ssd": 225.0}
    directions = {m.name: m.direction for m in ALGO.metrics}
    assert directions["test:msd"] == directions["test:ssd"] == "Minimize"


def _train_direct(tmp_path, hp: dict[str, str], x: np.ndarray) -> tuple[str, KMeansAlgorithm]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "train.pbr"
    path.write_bytes(recordio.write_matrix(x.astype(np.float32)))
    log = io.StringIO()
    ALGO.train(TrainingContext(ALGO.hyperparameters.validate(hp), {"train": Channel("train", PROTOBUF, [path])},
                               tmp_path / "model", tmp_path / "out", log))
    return log.getvalue(), ALGO.load(tmp_path / "model")


def test_training_log_and_decay(tmp_path):
    x, y = load_iris(return_X_y=True)
    log, predictor = _train_direct(tmp_path / "plain", {"k": "3", "feature_dim": "4", "mini_batch_size": "40",
                                                         "epochs": "3"}, x)
    assert "'extra_center_factor' was set to 'auto', evaluated to 10." in log
    assert "shrinking 30 centers into 3" in log and log.count("local kmeans attempt #") == 10
    assert [line.split("completed ")[1] for line in log.splitlines() if "#progress_metric" in line] == [
        "33.3 % of epochs", "66.7 % of epochs", "100.0 % of epochs"]
    assert "Test data is not provided." in log
    # Old records fade with half_life_time_size: the model still finds iris' clusters.
    log, decayed = _train_direct(tmp_path / "decay", {"k": "3", "feature_dim": "4", "mini_batch_size": "10",
                                                       "half_life_time_size": "30", "extra_center_factor": "2",
                                                       "local_lloyd_num_trials": "3"}, x[np.random.default_rng(1)
                                                                                         .permutation(150)])
    assert "shrinking 6 centers into 3" in log and log.count("local kmeans attempt #") == 3
    labels = [r["closest_cluster"] for r in json.loads(decayed.invoke(csv_body(x).encode(), "text/csv",
                                                                      "application/json")[0])["predictions"]]
    assert adjusted_rand_score(y, labels) > 0.5


@pytest.mark.slow
def test_iris_job_endpoint_and_every_format(sm, s3, rt, bucket):
    x, y = load_iris(return_X_y=True)
    train_uri = put_protobuf(s3, bucket, "kmeans/train", x)  # record_set style: features only
    test_uri = put_csv(s3, bucket, "kmeans/test", x)
    desc = train(sm, bucket, "kmeans", {"k": "3", "feature_dim": "4", "mini_batch_size": "5000", "force_dense": "True",
                                        "eval_metrics": '["msd", "ssd"]'},
                 [protobuf_channel("train", train_uri), csv_channel("test", test_uri, label_size=0)])
    metrics = metrics_of(desc)
    assert {"train:msd", "test:msd", "test:ssd", "train:progress", "train:throughput"} <= set(metrics)
    assert metrics["test:ssd"] == pytest.approx(150 * metrics["test:msd"], rel=1e-6)
    reference = KMeans(n_clusters=3, n_init=10, random_state=0).fit(x)
    assert metrics["test:msd"] <= 1.05 * reference.inertia_ / len(x)  # as tight as full-batch Lloyd

    model = create_model(sm, "kmeans", desc)
    endpoint = deploy(sm, model)
    payload, kind = invoke(rt, endpoint, recordio.write_matrix(x.astype(np.float32)), PROTOBUF, PROTOBUF)
    assert kind == PROTOBUF
    records = protobuf_labels(payload)
    assert len(records) == 150 and set(records[0]) == {"closest_cluster", "distance_to_cluster"}
    clusters = [r["closest_cluster"][0] for r in records]
    assert adjusted_rand_score(y, clusters) >= 0.7  # sklearn's KMeans reaches 0.73 on iris
    distances = np.array([r["distance_to_cluster"][0] for r in records])
    assert np.mean(distances ** 2) == pytest.approx(metrics["test:msd"], rel=1e-4)

    as_json = json.loads(invoke(rt, endpoint, json_body(x[:5]), "application/json")[0])
    assert [p["closest_cluster"] for p in as_json["predictions"]] == clusters[:5]
    assert all(isinstance(p["closest_cluster"], float) for p in as_json["predictions"])
    text, kind = invoke(rt, endpoint, csv_body(x[:5]), "text/csv", "text/csv")
    assert kind == "text/csv"
    assert [[float(v) for v in line.split(",")] for line in text.decode().splitlines()] == [
        [r["closest_cluster"][0], r["distance_to_cluster"][0]] for r in records[:5]]
    lines, kind = invoke(rt, endpoint, csv_body(x[:2]), "text/csv", "application/jsonlines")
    assert kind == "application/jsonlines" and [json.loads(line) for line in lines.decode().splitlines()] == \
        as_json["predictions"][:2]

    wrong = model_error(rt, endpoint, "1,2,3", "text/csv")
    assert wrong["OriginalStatusCode"] == 400 and "4 features" in wrong["OriginalMessage"]
    truncated = model_error(rt, endpoint, recordio.write_matrix(x[:3].astype(np.float32))[:-9], PROTOBUF)
    assert truncated["OriginalStatusCode"] == 400 and "record 3" in truncated["OriginalMessage"]
    sm.delete_endpoint(EndpointName=endpoint)
    assert [row["closest_cluster"] for row in batch_transform(sm, s3, bucket, model, x)] == clusters

"""Random Cut Forest: the forest separates anomalies, the test channel's three-sigma metrics, the user's path."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from builtin_flow import (
    channel,
    csv_text,
    deploy,
    image,
    invoke,
    invoke_json,
    metrics,
    model_error,
    put,
    train,
)
from sklearn.metrics import roc_auc_score

from sagelab.algorithms.base import Channel, DataError, TrainingContext
from sagelab.algorithms.first_party.recordio import read_records, write_matrix
from sagelab.algorithms.random_cut_forest.algorithm import RandomCutForest, evaluate
from sagelab.algorithms.random_cut_forest.model import Forest
from sagelab.errors import ValidationError
from sagelab.testing import algorithm_kit as kit

RCF = image("randomcutforest")
PROTOBUF = "application/x-recordio-protobuf"


@pytest.fixture(scope="module")
def rt(server):
    return server.client("sagemaker-runtime")


def test_declared_surface():
    rcf = RandomCutForest()
    assert rcf.image_repositories == ("randomcutforest",)
    assert set(rcf.hyperparameters.by_name()) == {"feature_dim", "eval_metrics", "num_samples_per_tree", "num_trees"}
    values = rcf.hyperparameters.validate({"feature_dim": "2"})
    assert (values["num_trees"], values["num_samples_per_tree"]) == (100, 256)
    assert values["eval_metrics"] == ["accuracy", "precision_recall_fscore"]
    assert rcf.hyperparameters.validate({"feature_dim": "2", "eval_metrics": '["accuracy"]'})["eval_metrics"] == [
        "accuracy"]
    with pytest.raises(ValidationError, match="'f2' is not a metric"):
        rcf.hyperparameters.validate({"feature_dim": "2", "eval_metrics": '["f2"]'})
    for name, value in (("num_trees", "49"), ("num_samples_per_tree", "2049"), ("feature_dim", "10001")):
        with pytest.raises(ValidationError, match=name):
            rcf.hyperparameters.validate({"feature_dim": "2", name: value})
    assert {m.name: m.direction for m in rcf.metrics}["test:f1"] == "Maximize"


def test_scores_separate_injected_anomalies_like_isolation_forest():
    from sklearn.ensemble import IsolationForest

    data = kit.wine_with_anomalies()
    x, y = np.vstack([data.x_train, data.x_validation]), np.r_[data.y_train, data.y_validation]
    forest = Forest.build(x, num_trees=100, samples_per_tree=128, seed=1)
    scores = forest.scores(x)
    reference = -IsolationForest(random_state=0).fit(x).score_samples(x)
    assert roc_auc_score(y, scores) >= 0.97
    assert roc_auc_score(y, scores) >= roc_auc_score(y, reference) - 0.02
    normal, odd = np.median(scores[y == 0]), np.median(scores[y == 1])
    assert 0.3 < normal < 1.2 and odd > 1.8 * normal  # normal points about 1 or less, anomalies a multiple


def test_three_sigma_metrics():
    scores = np.r_[np.ones(98), 10.0, 10.0]
    labels = np.r_[np.zeros(97), 1.0, 1.0, 1.0]
    values = evaluate(scores, labels, ["accuracy", "precision_recall_fscore"])
    assert values["precision"] == (1.0, "score") and values["recall"][0] == pytest.approx(2 / 3)
    assert values["f1"][0] == pytest.approx(0.8) and values["accuracy"][0] == pytest.approx(0.99)
    assert set(evaluate(scores, labels, ["accuracy"])) == {"accuracy"}


def test_deep_skewed_data_builds_without_recursion(tmp_path):
    x = np.ldexp(1.0, np.arange(-1000, 500))[:, None]  # each random cut peels about one point off the top
    forest = Forest.build(x, num_trees=2, samples_per_tree=1500, seed=0)
    forest.save(tmp_path)
    assert Forest.load(tmp_path).scores(x[:3]) == pytest.approx(forest.scores(x[:3]))


@pytest.mark.parametrize("channels, fragment", [
    ({"train": ("text/csv;label_size=0", b"1,2\n3,4\n")}, "feature_dim is 3"),
    ({"train": ("text/csv", b"1,2,3\n,2,3\n")}, "feature 1 is missing"),
    ({"train": (PROTOBUF, write_matrix(np.ones((3, 3)))[:-3])}, "truncated"),
    ({"train": (PROTOBUF, write_matrix(np.ones((3, 3)))), "test": ("text/csv;label_size=1", b"2,1,1,1\n")},
     "must be 1 (anomaly) or 0"),
    ({"train": (PROTOBUF, write_matrix(np.ones((3, 3)))), "test": (PROTOBUF, write_matrix(np.ones((1, 3))))},
     "carry no label"),
])
def test_bad_data_fails_with_the_reason(tmp_path, channels, fragment):
    made = {}
    for name, (content_type, data) in channels.items():
        path = tmp_path / name / "00000-part"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        made[name] = Channel(name, content_type.split(";")[0], [path],
                             params=dict([content_type.split(";")[1].split("=")]) if ";" in content_type else {})
    ctx = TrainingContext({"feature_dim": "3", "num_trees": "50"}, made, tmp_path / "m", tmp_path / "o", io.StringIO())
    with pytest.raises(DataError, match=re.escape(fragment)):
        RandomCutForest().train(ctx)


@pytest.mark.slow
def test_wine_anomalies_job_test_metrics_and_endpoint(sm, s3, rt, bucket):
    data = kit.wine_with_anomalies(anomalies=6)  # 3% anomalies: the three-sigma rule's home ground
    everything = np.vstack([data.x_train, data.x_validation])
    labels = np.r_[data.y_train, data.y_validation]
    train_uri = put(s3, bucket, "rcf/train/train.csv", csv_text(data.x_train))
    test_uri = put(s3, bucket, "rcf/test/test.csv", csv_text(everything, labels))
    desc = train(sm, bucket, RCF, {"feature_dim": "13", "num_trees": "100", "num_samples_per_tree": "128"},
                 [channel("train", train_uri, "text/csv;label_size=0"),
                  channel("test", test_uri, "text/csv;label_size=1")])
    found = metrics(desc)
    assert found["test:f1"] >= 0.8 and found["test:precision"] >= 0.8 and found["test:accuracy"] >= 0.98
    endpoint = deploy(sm, RCF, desc)
    scores = [s["score"] for s in invoke_json(rt, endpoint, csv_text(everything), "text/csv")["scores"]]
    assert roc_auc_score(labels, scores) >= 0.97
    rows = data.x_validation[:3]
    from_json = invoke_json(rt, endpoint, json.dumps({"instances": [{"features": r.tolist()} for r in rows]}),
                            "application/json")
    assert from_json == {"scores": [{"score": pytest.approx(s)} for s in scores[len(data.x_train):][:3]]}
    payload, returned = invoke(rt, endpoint, write_matrix(rows.astype(np.float32)), PROTOBUF, PROTOBUF)
    assert returned == PROTOBUF
    assert [r.label["score"].values[0] for r in read_records(payload)] == pytest.approx(
        [s["score"] for s in from_json["scores"]], rel=1e-5)
    lines, _ = invoke(rt, endpoint, csv_text(rows), "text/csv", "application/jsonlines")
    assert [json.loads(line) for line in lines.decode().splitlines()] == from_json["scores"]
    status, message = model_error(rt, endpoint, "1,2,3", "text/csv")
    assert status == 400 and "13 features" in message
    assert model_error(rt, endpoint, "1," * 12 + "nan", "text/csv")[0] == 400
    sm.delete_endpoint(EndpointName=endpoint)

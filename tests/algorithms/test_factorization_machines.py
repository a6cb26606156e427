"""Factorization Machines: the model's math, its recordIO-only training, and the user's path on a real server."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from builtin_flow import (
    channel,
    create_model,
    deploy,
    image,
    invoke,
    invoke_json,
    metrics,
    model_error,
    put,
    train,
    transform,
)

from sagelab.algorithms.base import Channel, DataError, TrainingContext
from sagelab.algorithms.factorization_machines.algorithm import FactorizationMachines
from sagelab.algorithms.factorization_machines.model import FMModel, sigmoid
from sagelab.algorithms.first_party.recordio import read_records, write_matrix
from sagelab.testing import algorithm_kit as kit

FM = image("factorization-machines")
PROTOBUF = "application/x-recordio-protobuf"
BINARY = {"feature_dim": "30", "num_factors": "4", "predictor_type": "binary_classifier", "epochs": "20",
          "mini_batch_size": "32", "bias_lr": "0.01", "linear_lr": "0.01", "factors_lr": "0.01"}


@pytest.fixture(scope="module")
def rt(server):
    return server.client("sagemaker-runtime")


def context(tmp_path: Path, hp: dict[str, str], channels: dict[str, tuple[str, bytes]]) -> TrainingContext:
    made = {}
    for name, (content_type, data) in channels.items():
        path = tmp_path / name / "00000-part"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        made[name] = Channel(name, content_type, [path])
    return TrainingContext(hp, made, tmp_path / "model", tmp_path / "output", io.StringIO())


def test_declared_surface():
    fm = FactorizationMachines()
    assert fm.image_repositories == ("factorization-machines",)
    names = set(fm.hyperparameters.by_name())
    for group in ("bias", "linear", "factors"):
        assert {f"{group}_{p}" for p in ("lr", "wd", "init_method", "init_scale", "init_sigma", "init_value")} <= names
    assert {"feature_dim", "num_factors", "predictor_type", "epochs", "mini_batch_size", "clip_gradient", "eps",
            "rescale_grad"} <= names
    assert [p.name for p in fm.hyperparameters.params if p.required] == ["feature_dim", "num_factors",
                                                                          "predictor_type"]
    defaults = fm.hyperparameters.validate({"feature_dim": "3", "num_factors": "2", "predictor_type": "regressor"})
    assert (defaults["epochs"], defaults["mini_batch_size"], defaults["factors_lr"], defaults["bias_wd"],
            defaults["linear_init_method"]) == (1, 1000, 0.0001, 0.01, "normal")
    assert {m.name: m.direction for m in fm.metrics if m.name.startswith("test:")} == {
        "test:rmse": "Minimize", "test:binary_classification_accuracy": "Maximize",
        "test:binary_classification_cross_entropy": "Minimize", "test:binary_f_beta": "Maximize"}


@pytest.mark.parametrize("sparse", [False, True])
def test_gradients_match_finite_differences(sparse):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(6, 5)) * (rng.random((6, 5)) < 0.6)
    y = rng.integers(0, 2, size=6).astype(float)
    model = FMModel("binary_classifier", 0.1, rng.normal(size=5), rng.normal(size=(5, 3)))
    batch = sp.csr_matrix(x) if sparse else x

    def loss() -> float:
        raw, _, _ = model.forward(batch)
        return float(np.mean(np.logaddexp(0.0, raw) - y * raw))

    raw, xv, x2 = model.forward(batch)
    grad_w0, grad_w, grad_v = model.gradients(batch, sigmoid(raw) - y, xv, x2)
    eps = 1e-6
    for array, grad in ((model.w, grad_w), (model.v, grad_v)):
        for index in np.ndindex(array.shape):
            array[index] += eps
            up = loss()
            array[index] -= 2 * eps
            down = loss()
            array[index] += eps
            assert grad[index] == pytest.approx((up - down) / (2 * eps), abs=1e-6)
    model.w0 += eps
    up = loss()
    model.w0 -= 2 * eps
    assert grad_w0 == pytest.approx((up - loss()) / (2 * eps), abs=1e-6)


def test_sparse_one_hot_interactions_are_learned(tmp_path):
    """FM's home ground: one-hot user and item columns whose label depends on their pairing only."""
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 20, size=3000), rng.integers(0, 20, size=3000)
    y = ((users % 2) == (items % 2)).astype(float)  # no linear signal at all
    rows = np.repeat(np.arange(3000), 2)
    x = sp.csr_matrix((np.ones(6000), (rows, np.column_stack([users, 20 + items]).ravel())), shape=(3000, 40))
    hp = {"feature_dim": "40", "num_factors": "4", "predictor_type": "binary_classifier", "epochs": "15",
          "mini_batch_size": "100", "linear_lr": "0.01", "factors_lr": "0.05", "factors_init_sigma": "0.1"}
    ctx = context(tmp_path, hp, {"train": (PROTOBUF, write_matrix(x[:2500], y[:2500])),
                                 "test": (PROTOBUF, write_matrix(x[2500:], y[2500:]))})
    FactorizationMachines().train(ctx)
    accuracy = float(ctx.log.getvalue().split("test binary_classification_accuracy <score>=")[1].split()[0])
    assert accuracy >= 0.95
    assert "#test_score (algo-1) : ('binary_f_1.000', " in ctx.log.getvalue()


@pytest.mark.parametrize("content_type, data, fragment", [
    ("text/csv", b"1,0.5,0.25\n0,0.1,0.2\n", "recordIO-protobuf with Float32 tensors only"),
    (PROTOBUF, write_matrix(np.ones((2, 3)), [0, 1], kind="float64"), "Float64 tensors"),
    (PROTOBUF, write_matrix(np.ones((2, 3)), [0, 2]), "label 2.0 is not valid for predictor_type binary_classifier"),
    (PROTOBUF, write_matrix(np.ones((2, 4)), [0, 1]), "feature_dim is 3"),
    (PROTOBUF, write_matrix(np.ones((2, 3)), [0, 1])[:-6], "truncated"),
    (PROTOBUF, write_matrix(np.array([[1.0, np.nan, 2.0]]), [1]), "not a finite number"),
    (PROTOBUF, write_matrix(np.ones((2, 3))), "carry no label"),
    (PROTOBUF, b"1,2,3\n", "bad magic number"),
    (PROTOBUF, b"", "no data"),
])
def test_bad_training_data_fails_with_the_reason(tmp_path, content_type, data, fragment):
    hp = {"feature_dim": "3", "num_factors": "2", "predictor_type": "binary_classifier"}
    with pytest.raises(DataError, match=re.escape(fragment)):
        FactorizationMachines().train(context(tmp_path, hp, {"train": (content_type, data)}))


@pytest.mark.slow
def test_breast_cancer_job_endpoint_and_formats(sm, s3, rt, bucket):
    data = kit.breast_cancer_standardized()
    train_uri = put(s3, bucket, "fm/train/train.pbr", write_matrix(data.x_train.astype(np.float32), data.y_train))
    test_uri = put(s3, bucket, "fm/test/test.pbr", write_matrix(data.x_validation.astype(np.float32),
                                                               data.y_validation))
    desc = train(sm, bucket, FM, BINARY, [channel("train", train_uri, PROTOBUF), channel("test", test_uri, PROTOBUF)])
    found = metrics(desc)
    assert found["test:binary_classification_accuracy"] >= 0.93  # logistic regression reaches ~0.96 here
    assert found["test:binary_f_beta"] >= 0.93 and found["test:binary_classification_cross_entropy"] < 0.3
    endpoint = deploy(sm, FM, desc)
    rows = data.x_validation[:4]
    dense = invoke_json(rt, endpoint, json.dumps({"instances": [{"features": r.tolist()} for r in rows]}),
                        "application/json")["predictions"]
    assert [set(p) for p in dense] == [{"score", "predicted_label"}] * 4
    assert all(p["predicted_label"] == int(p["score"] >= 0.5) for p in dense)
    first = sp.csr_matrix(rows[:1])
    sparse = invoke_json(rt, endpoint, json.dumps({"instances": [{"data": {"features": {
        "keys": first.indices.tolist(), "shape": [30], "values": first.data.tolist()}}}]}), "application/json")
    assert sparse["predictions"][0]["score"] == pytest.approx(dense[0]["score"], rel=1e-5)
    lines, returned = invoke(rt, endpoint, "".join(json.dumps({"features": r.tolist()}) + "\n" for r in rows),
                             "application/jsonlines", "application/jsonlines")
    assert returned == "application/jsonlines" and len(lines.decode().splitlines()) == 4
    payload, returned = invoke(rt, endpoint, write_matrix(rows.astype(np.float32)), PROTOBUF, PROTOBUF)
    records = read_records(payload)
    assert returned == PROTOBUF and len(records) == 4
    assert records[0].label["score"].values[0] == pytest.approx(dense[0]["score"], rel=1e-5)
    assert records[0].label["predicted_label"].values[0] == dense[0]["predicted_label"]
    assert model_error(rt, endpoint, "1,2,3", "text/csv")[0] == 415
    assert model_error(rt, endpoint, write_matrix(rows[:2])[:-5], PROTOBUF)[0] == 400
    sm.delete_endpoint(EndpointName=endpoint)

    # Batch transform, SplitType RecordIO: the same scores, one JSON line per record.
    batch = transform(sm, create_model(sm, FM, desc), test_uri, f"s3://{bucket}/fm/out", content_type=PROTOBUF,
                      split="RecordIO", accept="application/jsonlines")
    assert batch["TransformJobStatus"] == "Completed", batch.get("FailureReason")
    lines = s3.get_object(Bucket=bucket, Key="fm/out/test.pbr.out")["Body"].read().decode().splitlines()
    scored = [json.loads(line) for line in lines]
    assert len(scored) == len(data.y_validation) and scored[0]["score"] == pytest.approx(dense[0]["score"], rel=1e-5)

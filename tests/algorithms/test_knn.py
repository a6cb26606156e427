"""k-NN: the SageMaker surface, exact agreement with scikit-learn's neighbours, and a real job -> endpoint cycle
on the wine data set."""

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
from sklearn.datasets import load_diabetes, load_iris, load_wine
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from sagelab.algorithms.base import Channel, TrainingContext
from sagelab.algorithms.first_party import recordio
from sagelab.algorithms.knn.algorithm import KNNAlgorithm
from sagelab.errors import ValidationError
from sagelab.training.metrics import extract_metrics

ALGO = KNNAlgorithm()
BASE = {"feature_dim": "4", "k": "5", "predictor_type": "classifier", "sample_size": "200"}


@pytest.fixture(scope="module")
def rt(server):
    return server.client("sagemaker-runtime")


def test_declares_the_sagemaker_surface():
    assert ALGO.image_repositories == ("knn",)
    assert sorted(ALGO.hyperparameters.by_name()) == sorted((
        "feature_dim", "k", "predictor_type", "sample_size", "dimension_reduction_target",
        "dimension_reduction_type", "faiss_index_ivf_nlists", "faiss_index_pq_m", "index_metric", "index_type",
        "mini_batch_size"))
    assert {p.name for p in ALGO.hyperparameters.params if p.required} == {"feature_dim", "k", "predictor_type",
                                                                            "sample_size"}
    values = ALGO.hyperparameters.validate({**BASE, "index_metric": "cosine", "faiss_index_pq_m": "16"})
    assert values["index_metric"] == "COSINE" and values["index_type"] == "faiss.Flat"
    assert values["faiss_index_ivf_nlists"] == "auto" and values["mini_batch_size"] == 5000
    for bad, message in (({"dimension_reduction_type": "sign"}, "dimension_reduction_target' is required"),
                         ({"dimension_reduction_type": "fjlt", "dimension_reduction_target": "4"},
                          "feature_dim - 1 = 3, got 4"),
                         ({"index_type": "faiss.IVFPQ", "index_metric": "INNER_PRODUCT"}, "expected L2"),
                         ({"faiss_index_pq_m": "5"}, "faiss_index_pq_m"),
                         ({"predictor_type": "ranker"}, "predictor_type")):
        with pytest.raises(ValidationError, match=message):
            ALGO.hyperparameters.validate({**BASE, **bad})
    log = ["[06/08/2018 20:15:46 INFO 140285487171328] #test_score (algo-1) : ('accuracy', 0.98666666666666669)",
           "[06/08/2018 20:15:33 INFO 140026520049408] #test_score (algo-1) : ('mse', 0.013333333333333334)"]
    assert extract_metrics(log, ALGO.metrics) == {"test:accuracy": 0.98666666666666669,
                                                  "test:mse": 0.013333333333333334}


def _fit(tmp_path, x: np.ndarray, y: np.ndarray, **hp: str):
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "train.pbr"
    path.write_bytes(recordio.write_matrix(x.astype(np.float32), y))
    values = ALGO.hyperparameters.validate({**BASE, "feature_dim": str(x.shape[1]), **hp})
    log = io.StringIO()
    ALGO.train(TrainingContext(values, {"train": Channel("train", PROTOBUF, [path])}, tmp_path / "model",
                               tmp_path / "out", log))
    return ALGO.load(tmp_path / "model"), log.getvalue()


def _answers(predictor, x: np.ndarray, accept: str = "application/json; verbose=true") -> list[dict]:
    return json.loads(predictor.invoke(csv_body(x).encode(), "text/csv", accept)[0])["predictions"]


def test_exact_search_agrees_with_scikit_learn(tmp_path):
    x, y = load_iris(return_X_y=True)
    xtr, xte, ytr, _ = train_test_split(x.astype(np.float32), y, test_size=0.3, random_state=0)
    predictor, log = _fit(tmp_path / "classifier", xtr, ytr, index_type="faiss.IVFPQ", faiss_index_pq_m="2")
    assert "searches exactly" in log
    reference = KNeighborsClassifier(n_neighbors=5).fit(xtr, ytr)
    distances, indices = reference.kneighbors(xte)
    answers = _answers(predictor, xte)
    np.testing.assert_allclose([a["distances"] for a in answers], distances, rtol=1e-5, atol=1e-5)
    assert [a["labels"] for a in answers] == ytr[indices].astype(float).tolist()
    assert np.mean(np.array([a["predicted_label"] for a in answers]) == reference.predict(xte)) >= 0.97

    d = load_diabetes()
    regressor, _ = _fit(tmp_path / "regressor", d.data, d.target, predictor_type="regressor", k="7",
                        sample_size="1000")
    expected = KNeighborsRegressor(n_neighbors=7).fit(d.data.astype(np.float32), d.target).predict(d.data[:20])
    np.testing.assert_allclose([a["predicted_label"] for a in _answers(regressor, d.data[:20], "application/json")],
                               expected, rtol=1e-5)


def test_sampling_inner_product_cosine_and_reduction(tmp_path):
    x, y = load_iris(return_X_y=True)
    predictor, log = _fit(tmp_path / "sampled", x, y, sample_size="60")
    assert "Sampled 60 of the 150 training records" in log and predictor.model.points.shape == (60, 4)
    inner, _ = _fit(tmp_path / "inner", x, y, index_metric="INNER_PRODUCT", k="3")
    scores = x[:4].astype(np.float32) @ x.astype(np.float32).T
    answers = _answers(inner, x[:4])
    np.testing.assert_allclose([a["distances"] for a in answers], -np.sort(-scores, axis=1)[:, :3], rtol=1e-5)
    cosine, _ = _fit(tmp_path / "cosine", x * 10, y, index_metric="COSINE", k="1")
    assert all(a["distances"][0] == pytest.approx(1.0, abs=1e-5) for a in _answers(cosine, x[:5]))
    reduced, log = _fit(tmp_path / "fjlt", x, y, dimension_reduction_type="fjlt", dimension_reduction_target="2")
    assert "Reduced the dimension from 4 to 2 (fjlt)" in log and reduced.model.points.shape == (150, 2)
    assert np.mean([a["predicted_label"] for a in _answers(reduced, x, "application/json")] == y) >= 0.7


@pytest.mark.slow
def test_wine_job_endpoint_and_every_format(sm, s3, rt, bucket):
    data = load_wine()
    x = (data.data - data.data.mean(axis=0)) / data.data.std(axis=0)
    xtr, xte, ytr, yte = train_test_split(x, data.target.astype(float), test_size=0.3, random_state=0,
                                          stratify=data.target)
    desc = train(sm, bucket, "knn", {"feature_dim": "13", "k": "5", "predictor_type": "classifier",
                                     "sample_size": "1000", "mini_batch_size": "100"},
                 [protobuf_channel("train", put_protobuf(s3, bucket, "knn/train", xtr, ytr)),
                  csv_channel("test", put_csv(s3, bucket, "knn/test", xte, yte), label_size=1)])
    accuracy = metrics_of(desc)["test:accuracy"]
    reference = KNeighborsClassifier(n_neighbors=5).fit(xtr.astype(np.float32), ytr)
    assert accuracy >= 0.9 and accuracy == pytest.approx(reference.score(xte.astype(np.float32), yte), abs=0.02)

    model = create_model(sm, "knn", desc)
    endpoint = deploy(sm, model)
    payload, kind = invoke(rt, endpoint, recordio.write_matrix(xte.astype(np.float32)), PROTOBUF,
                           f"{PROTOBUF}; verbose=true")
    assert kind == PROTOBUF
    records = protobuf_labels(payload)
    assert len(records) == len(xte) and set(records[0]) == {"predicted_label", "distances", "labels"}
    predicted = np.array([r["predicted_label"][0] for r in records])
    assert np.mean(predicted == yte) == pytest.approx(accuracy)
    assert all(len(r["distances"]) == 5 and r["distances"] == sorted(r["distances"]) for r in records)
    plain = protobuf_labels(invoke(rt, endpoint, recordio.write_matrix(xte[:3].astype(np.float32)), PROTOBUF,
                                   PROTOBUF)[0])
    assert [set(r) for r in plain] == [{"predicted_label"}] * 3

    as_json = json.loads(invoke(rt, endpoint, json_body(xte[:4]), "application/json")[0])
    assert as_json == {"predictions": [{"predicted_label": float(v)} for v in predicted[:4]]}
    verbose = json.loads(invoke(rt, endpoint, csv_body(xte[:2]), "text/csv", "application/json; verbose=true")[0])
    assert [set(p) for p in verbose["predictions"]] == [{"predicted_label", "distances", "labels"}] * 2
    lines, kind = invoke(rt, endpoint, csv_body(xte[:2]), "text/csv", "application/jsonlines")
    assert kind == "application/jsonlines" and len(lines.decode().splitlines()) == 2

    sparse = model_error(rt, endpoint, json.dumps({"data": {"features": {"keys": [20], "shape": [13],
                                                                        "values": [1.0]}}}), "application/json")
    assert sparse["OriginalStatusCode"] == 400 and "sparse key 20" in sparse["OriginalMessage"]
    sm.delete_endpoint(EndpointName=endpoint)
    assert [row["predicted_label"] for row in batch_transform(sm, s3, bucket, model, xte)] == predicted.tolist()

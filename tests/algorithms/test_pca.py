"""PCA: the SageMaker surface, components against scikit-learn and NumPy, and a real job -> endpoint cycle on
the digits data set."""

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
    deploy,
    invoke,
    json_body,
    metrics_of,
    model_error,
    protobuf_channel,
    protobuf_labels,
    put_protobuf,
    train,
)
from sklearn.datasets import load_digits, load_wine
from sklearn.decomposition import PCA

from sagelab.algorithms.base import Channel, TrainingContext
from sagelab.algorithms.first_party import recordio
from sagelab.algorithms.pca.algorithm import PCAAlgorithm
from sagelab.algorithms.pca.model import PCAModel
from sagelab.errors import ValidationError

ALGO = PCAAlgorithm()


@pytest.fixture(scope="module")
def rt(server):
    return server.client("sagemaker-runtime")


def test_declares_the_sagemaker_surface():
    assert ALGO.image_repositories == ("pca",)
    names = set(ALGO.hyperparameters.by_name())
    assert {"feature_dim", "mini_batch_size", "num_components", "algorithm_mode", "extra_components",
            "subtract_mean"} <= names
    required = {p.name for p in ALGO.hyperparameters.params if p.required}
    assert required == {"feature_dim", "mini_batch_size", "num_components"}
    values = ALGO.hyperparameters.validate({"feature_dim": "34", "num_components": "33", "mini_batch_size": "500"})
    assert values["algorithm_mode"] == "regular" and values["subtract_mean"] is True
    assert values["extra_components"] == -1
    with pytest.raises(ValidationError, match="num_components.*feature_dim = 4, got 5"):
        ALGO.hyperparameters.validate({"feature_dim": "4", "num_components": "5", "mini_batch_size": "10"})
    with pytest.raises(ValidationError, match="extra_components"):
        ALGO.hyperparameters.validate({"feature_dim": "4", "num_components": "2", "mini_batch_size": "10",
                                       "extra_components": "-2"})
    assert {m.name for m in ALGO.metrics} == {"train:progress", "train:throughput"}


def _fit(tmp_path, x: np.ndarray, **hp: str) -> PCAModel:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "train.pbr"
    path.write_bytes(recordio.write_matrix(x.astype(np.float32)))
    values = ALGO.hyperparameters.validate({"feature_dim": str(x.shape[1]), "mini_batch_size": "100", **hp})
    ALGO.train(TrainingContext(values, {"train": Channel("train", PROTOBUF, [path])}, tmp_path / "model",
                               tmp_path / "out", io.StringIO()))
    return PCAModel.load(tmp_path / "model")


def _same_subspace(a: np.ndarray, b: np.ndarray) -> None:
    """Columns of a and b span the same space up to each column's sign."""
    np.testing.assert_allclose(np.abs(np.sum(a * b, axis=0)), 1.0, atol=1e-3)


def test_components_match_scikit_learn_in_ascending_order(tmp_path):
    x = load_wine().data
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    reference = PCA(n_components=5).fit(x)
    regular = _fit(tmp_path / "regular", x, num_components="5")
    np.testing.assert_allclose(regular.s, reference.singular_values_[::-1], rtol=1e-4)
    _same_subspace(regular.v, reference.components_[::-1].T)
    np.testing.assert_allclose(regular.mean, reference.mean_, atol=1e-5)
    randomized = _fit(tmp_path / "randomized", x, num_components="5", algorithm_mode="randomized")
    np.testing.assert_allclose(randomized.s, reference.singular_values_[::-1], rtol=1e-3)
    # Without subtract_mean: the top right singular vectors of the raw matrix.
    raw = load_wine().data
    _, singular, vt = np.linalg.svd(raw, full_matrices=False)
    for mode in ("regular", "randomized"):
        uncentred = _fit(tmp_path / f"uncentred-{mode}", raw, num_components="3", subtract_mean="false",
                         algorithm_mode=mode)
        assert uncentred.mean is None
        np.testing.assert_allclose(uncentred.s, singular[:3][::-1], rtol=1e-3)
        _same_subspace(uncentred.v, vt[:3][::-1].T)


@pytest.mark.slow
def test_digits_job_endpoint_and_every_format(sm, s3, rt, bucket):
    x = load_digits().data
    desc = train(sm, bucket, "pca", {"feature_dim": "64", "num_components": "10", "mini_batch_size": "500"},
                 [protobuf_channel("train", put_protobuf(s3, bucket, "pca/train", x))])
    assert metrics_of(desc)["train:progress"] == 100.0
    model = create_model(sm, "pca", desc)
    endpoint = deploy(sm, model)

    payload, kind = invoke(rt, endpoint, recordio.write_matrix(x.astype(np.float32)), PROTOBUF, PROTOBUF)
    assert kind == PROTOBUF
    projections = np.array([r["projection"] for r in protobuf_labels(payload)])
    assert projections.shape == (len(x), 10)
    # Columns come smallest component first: their variances are sklearn's explained variances, reversed.
    reference = PCA(n_components=10).fit(x)
    np.testing.assert_allclose(projections.var(axis=0, ddof=1), reference.explained_variance_[::-1], rtol=1e-3)
    assert np.all(np.diff(projections.var(axis=0)) > 0)

    as_json = json.loads(invoke(rt, endpoint, json_body(x[:3]), "application/json")[0])
    assert set(as_json) == {"projections"} and [set(p) for p in as_json["projections"]] == [{"projection"}] * 3
    np.testing.assert_allclose([p["projection"] for p in as_json["projections"]], projections[:3], rtol=1e-5,
                               atol=1e-4)
    lines, kind = invoke(rt, endpoint, csv_body(x[:2]), "text/csv", "application/jsonlines")
    assert kind == "application/jsonlines"
    assert [list(json.loads(line)) for line in lines.decode().splitlines()] == [["projection"], ["projection"]]

    assert model_error(rt, endpoint, csv_body(x[:1]), "text/csv", "text/csv")["OriginalStatusCode"] == 406
    nan = model_error(rt, endpoint, "nan" + ",1" * 63, "text/csv")
    assert nan["OriginalStatusCode"] == 400 and "feature 1" in nan["OriginalMessage"]
    sm.delete_endpoint(EndpointName=endpoint)
    batch = batch_transform(sm, s3, bucket, model, x[:300])
    np.testing.assert_allclose([row["projection"] for row in batch], projections[:300], rtol=1e-5, atol=1e-4)

"""LDA: the SageMaker surface, planted topics recovered, bad documents named, and the SageMaker SDK's `LDA`
estimator trained, deployed and read back through its protobuf predictor."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import sagemaker  # a test extra: a missing SDK must fail, not skip
from helpers import client_env
from scipy.optimize import linear_sum_assignment

from sagelab.algorithms.base import Channel, DataError, InferenceError, TrainingContext
from sagelab.algorithms.lda.algorithm import LDAAlgorithm
from sagelab.errors import ValidationError
from sagelab.testing import algorithm_kit as kit

ALGO = LDAAlgorithm()
CSV0 = "text/csv;label_size=0"


def train_direct(tmp_path, hp: dict[str, str], channels: dict[str, tuple[str, bytes]]) -> TrainingContext:
    made = {}
    for name, (content_type, body) in channels.items():
        path = tmp_path / name / "part-0"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        made[name] = Channel(name, content_type, [path])
    ctx = TrainingContext(ALGO.hyperparameters.validate(hp), made, tmp_path / "model", tmp_path / "out",
                          io.StringIO())
    ALGO.train(ctx)
    return ctx


def csv_counts(x: np.ndarray) -> bytes:
    return "".join(",".join(str(int(v)) for v in row) + "\n" for row in x).encode()


def matched_similarity(learned: np.ndarray, planted: np.ndarray) -> np.ndarray:
    """Cosine similarity of each planted topic to the learned topic it is matched with (Hungarian)."""
    a = learned / np.linalg.norm(learned, axis=1, keepdims=True)
    b = planted / np.linalg.norm(planted, axis=1, keepdims=True)
    similarity = a @ b.T
    rows, columns = linear_sum_assignment(-similarity)
    return similarity[rows, columns]


def test_declares_the_sagemaker_surface():
    assert ALGO.image_repositories == ("lda",)
    assert sorted(ALGO.hyperparameters.by_name()) == sorted(
        ("num_topics", "feature_dim", "mini_batch_size", "alpha0", "max_restarts", "max_iterations", "tol"))
    values = ALGO.hyperparameters.validate({"num_topics": "3", "feature_dim": "9", "mini_batch_size": "50"})
    assert (values["alpha0"], values["max_restarts"], values["max_iterations"], values["tol"]) == (1.0, 10, 1000, 1e-8)
    with pytest.raises(ValidationError, match="'alpha0'"):
        ALGO.hyperparameters.validate({"num_topics": "3", "feature_dim": "9", "mini_batch_size": "50", "alpha0": "0"})
    assert [(c.name, c.required) for c in ALGO.channels] == [("train", True), ("test", False)]
    assert {m.name: m.direction for m in ALGO.metrics} == {
        "test:pwll": "Maximize", "train:progress": "Maximize", "train:throughput": "Maximize"}


def test_planted_topics_are_recovered_and_mixtures_follow_them(tmp_path):
    data = kit.topic_documents(documents=1000, words=80)
    ctx = train_direct(tmp_path, {"num_topics": "10", "feature_dim": "25", "mini_batch_size": "800"},
                       {"train": (CSV0, csv_counts(data.x_train)), "test": (CSV0, csv_counts(data.x_validation))})
    model = ALGO.load(ctx.model_dir).model
    similarity = matched_similarity(model.topic_word(), kit.planted_topics())
    assert np.median(similarity) >= 0.95 and (similarity >= 0.85).sum() >= 9, similarity
    pwll = float(re.findall(r"test pwll <score>=(\S+)", ctx.log.getvalue())[-1])
    assert pwll > -np.log(25) + 0.1  # better than every word equally likely
    # A document made of one planted topic's words gets that topic's learned counterpart as its largest share.
    learned = model.topic_word()
    single = np.zeros((10, 25))
    for i, topic in enumerate(kit.planted_topics()):
        single[i] = topic * 40
    mixtures = model.topic_mixture(single)
    assert np.allclose(mixtures.sum(axis=1), 1.0, atol=1e-5)
    best_topic = learned @ kit.planted_topics().T  # learned x planted
    assert (mixtures.argmax(axis=1) == best_topic.argmax(axis=0)).mean() >= 0.9


def test_predictor_answers_each_format_and_refuses_bad_documents(tmp_path):
    data = kit.topic_documents(documents=200)
    ctx = train_direct(tmp_path, {"num_topics": "10", "feature_dim": "25", "mini_batch_size": "160",
                                  "max_iterations": "20"},
                       {"train": (kit.PROTOBUF, kit.encode_request(data.x_train, kit.PROTOBUF))})
    assert "Test data is not provided." in ctx.log.getvalue()
    predictor = ALGO.load(ctx.model_dir)
    rows = data.x_validation[:3]
    sparse = (b'{"instances": [{"data": {"features": {"keys": [0, 5], "shape": [25], "values": [3, 1]}}}]}')
    dense = np.zeros((1, 25))
    dense[0, [0, 5]] = [3, 1]
    one = predictor.invoke(sparse, "application/json", "application/json")[0]
    assert one == predictor.invoke(kit.encode_request(dense, "text/csv"), "text/csv", "application/json")[0]
    records = kit._protobuf_records(predictor.invoke(kit.encode_request(rows, kit.PROTOBUF), kit.PROTOBUF,
                                                     kit.PROTOBUF)[0])
    assert [sorted(r.label) for r in records] == [["topic_mixture"]] * 3
    assert len(records[0].label["topic_mixture"].values) == 10
    negative = kit.encode_request(np.array([[1.0] * 24 + [-2.0]]), "text/csv")
    for body, content_type, accept, status, fragment in (
            (negative, "text/csv", "application/json", 400, "Record 1, word 25: count -2.0 is negative"),
            (b"1,2\n", "text/csv", "application/json", 400, "25 features"),
            (b"1,2\n", "text/plain", "application/json", 415, "text/plain"),
            (kit.encode_request(rows, "text/csv"), "text/csv", "text/csv", 406, "text/csv")):
        with pytest.raises(InferenceError) as info:
            predictor.invoke(body, content_type, accept)
        assert info.value.status == status and fragment in str(info.value)


@pytest.mark.parametrize("channels, fragment", [
    ({"train": (CSV0, b"1,2,3\n4,-5,6\n")}, "Channel 'train', record 2: word 2 has count -5.0"),
    ({"train": (CSV0, b"1,2\n")}, "feature_dim is 3"),
    ({"train": (CSV0, b"0,0,0\n0,0,0\n")}, "every document is empty"),
    ({"train": (CSV0, b"1,2,3\n"), "test": (CSV0, b"1,x,3\n")}, "Channel 'test'"),
    ({"train": ("application/x-recordio-protobuf", b"1,2,3\n")}, "text/csv"),
])
def test_bad_training_documents_fail_naming_the_record(tmp_path, channels, fragment):
    with pytest.raises(DataError, match=re.escape(fragment)):
        train_direct(tmp_path, {"num_topics": "2", "feature_dim": "3", "mini_batch_size": "2"}, channels)


@pytest.fixture
def sdk_session(server, monkeypatch, tmp_path):
    for name in [n for n in __import__("os").environ if n.startswith(("AWS_", "SAGEMAKER_"))]:
        monkeypatch.delenv(name)
    for name, value in client_env(server, tmp_path).items():
        if name.startswith(("AWS_", "SAGEMAKER_")):
            monkeypatch.setenv(name, value)
    return sagemaker.Session()


@pytest.mark.slow
def test_sdk_lda_estimator_record_set_fit_deploy_predict(sdk_session):
    from sagemaker import LDA

    data = kit.topic_documents(documents=600, words=80, seed=3)
    bucket = sdk_session.default_bucket()
    lda = LDA(role="arn:aws:iam::111122223333:role/r", instance_count=1, instance_type="ml.c5.xlarge",
              num_topics=10, alpha0=1.0, max_iterations=200, sagemaker_session=sdk_session,
              output_path=f"s3://{bucket}/lda/output", data_location=f"s3://{bucket}/lda/data")
    train = lda.record_set(data.x_train.astype("float32"))
    test = lda.record_set(data.x_validation.astype("float32"), channel="test")
    lda.fit([train, test], mini_batch_size=len(data.x_train), logs=False)
    job = sdk_session.sagemaker_client.describe_training_job(TrainingJobName=lda.latest_training_job.name)
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert metrics["test:pwll"] > -np.log(25)
    predictor = lda.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    try:
        records = predictor.predict(data.x_validation[:20].astype("float32"))
    finally:
        predictor.delete_model()
        predictor.delete_endpoint()
    mixtures = np.array([r.label["topic_mixture"].float32_tensor.values for r in records])
    assert mixtures.shape == (20, 10) and np.allclose(mixtures.sum(axis=1), 1.0, atol=1e-4)

"""NTM: the SageMaker surface, planted topics recovered by the PyTorch topic VAE, the vocabulary channel, bad
input named, and the SageMaker SDK's `NTM` estimator trained, deployed and read back through its protobuf
predictor."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import sagemaker  # a test extra: a missing SDK must fail, not skip
from helpers import client_env
from scipy.optimize import linear_sum_assignment

from sagelab.algorithms.base import Channel, DataError, InferenceError, TrainingContext
from sagelab.algorithms.ntm.algorithm import NTMAlgorithm
from sagelab.errors import ValidationError
from sagelab.testing import algorithm_kit as kit

ALGO = NTMAlgorithm()
LEARNS = {"num_topics": "10", "feature_dim": "25", "optimizer": "adam", "learning_rate": "0.02", "epochs": "30",
          "mini_batch_size": "64", "batch_norm": "true", "encoder_layers_activation": "relu",
          "num_patience_epochs": "10", "tolerance": "0.00001"}
WORDS = [f"w{row}{column}" for row in range(5) for column in range(5)]


def train_direct(tmp_path, hp: dict[str, str], channels: dict[str, tuple[str, bytes, str]]) -> TrainingContext:
    made = {}
    for name, (content_type, body, file_name) in channels.items():
        path = tmp_path / name / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        made[name] = Channel(name, content_type, [path])
    ctx = TrainingContext(ALGO.hyperparameters.validate(hp), made, tmp_path / "model", tmp_path / "out",
                          io.StringIO())
    ALGO.train(ctx)
    return ctx


def pbr(x: np.ndarray) -> tuple[str, bytes, str]:
    return kit.PROTOBUF, kit.encode_request(x, kit.PROTOBUF), "part-0.pbr"


def test_declares_the_sagemaker_surface():
    assert ALGO.image_repositories == ("ntm",)
    values = ALGO.hyperparameters.validate({"num_topics": "5", "feature_dim": "100"})
    assert (values["optimizer"], values["epochs"], values["mini_batch_size"], values["encoder_layers"],
            values["encoder_layers_activation"], values["clip_gradient"]) == (
        "adadelta", 50, 256, "auto", "sigmoid", float("inf"))
    assert ALGO.hyperparameters.validate({"num_topics": "5", "feature_dim": "100", "encoder_layers": "50,25",
                                          "clip_gradient": "Infinity"})["encoder_layers"] == [50, 25]
    for bad, name in (({"num_topics": "1"}, "num_topics"), ({"encoder_layers": "50,0"}, "encoder_layers"),
                      ({"sub_sample": "0"}, "sub_sample"), ({"optimizer": "lbfgs"}, "optimizer")):
        with pytest.raises(ValidationError, match=f"'{name}'"):
            ALGO.hyperparameters.validate({"num_topics": "5", "feature_dim": "100", **bad})
    assert [(c.name, c.required) for c in ALGO.channels] == [
        ("train", True), ("validation", False), ("test", False), ("auxiliary", False)]
    assert {m.name: m.direction for m in ALGO.metrics}["validation:total_loss"] == "Minimize"


def test_planted_topics_are_recovered_and_the_vocabulary_names_them(tmp_path):
    data = kit.topic_documents(documents=2000, words=80)
    ctx = train_direct(tmp_path, LEARNS, {
        "train": pbr(data.x_train), "validation": pbr(data.x_validation[:200]), "test": pbr(data.x_validation[200:]),
        "auxiliary": ("text/plain", "\n".join(WORDS).encode() + b"\n", "vocab.txt")})
    log = ctx.log.getvalue()
    losses = [float(v) for v in re.findall(r"epoch=\d+, validation total_loss <loss>=(\S+)", log)]
    assert losses[-1] < 0.95 * losses[0]
    assert re.search(r"#quality_metric: host=algo-1, test total_loss <loss>=\S+", log)
    predictor = ALGO.load(ctx.model_dir)
    # The decoder's topics against the planted bars.
    weights = np.exp(predictor.network.topic_word().numpy())
    learned = weights / weights.sum(axis=1, keepdims=True)
    planted = kit.planted_topics()
    similarity = (learned / np.linalg.norm(learned, axis=1, keepdims=True)) @ (
        planted / np.linalg.norm(planted, axis=1, keepdims=True)).T
    rows, columns = linear_sum_assignment(-similarity)
    matched = similarity[rows, columns]
    assert np.median(matched) >= 0.9 and (matched >= 0.8).sum() >= 8, matched
    # A document of one bar's words is given mostly to one topic, a different one for (almost) each bar.
    topic_weights = predictor.topic_weights(planted * 40)
    assert np.allclose(topic_weights.sum(axis=1), 1.0, atol=1e-5)
    assert len(set(topic_weights.argmax(axis=1).tolist())) >= 8
    # The log lists each topic's top words: most topics' five first words are exactly one planted bar.
    top_lines = re.findall(r"^\[(\d+)\] (.+)$", log, re.MULTILINE)
    bars = [{WORDS[i] for i in np.flatnonzero(topic)} for topic in planted]
    assert len(top_lines) == 10 and all(set(line.split()) <= set(WORDS) for _, line in top_lines)
    assert sum(set(line.split()[:5]) in bars for _, line in top_lines) >= 7


def test_predictor_answers_each_format_and_refuses_bad_documents(tmp_path):
    data = kit.topic_documents(documents=200)
    ctx = train_direct(tmp_path, {"num_topics": "3", "feature_dim": "25", "epochs": "2", "sub_sample": "0.5",
                                  "clip_gradient": "5", "rescale_gradient": "0.5", "optimizer": "rmsprop"},
                       {"train": ("text/csv;label_size=0", kit.encode_request(data.x_train, "text/csv"), "a.csv")})
    assert "completed 100.0 % of epochs" in ctx.log.getvalue()
    predictor = ALGO.load(ctx.model_dir)
    rows = data.x_validation[:4]
    as_json = predictor.invoke(kit.encode_request(rows, "application/json"), "application/json",
                               "application/json")[0]
    predictions = __import__("json").loads(as_json)["predictions"]
    assert [sorted(p) for p in predictions] == [["topic_weights"]] * 4 and len(predictions[0]["topic_weights"]) == 3
    records = kit._protobuf_records(predictor.invoke(kit.encode_request(rows, kit.PROTOBUF), kit.PROTOBUF,
                                                     kit.PROTOBUF)[0])
    assert np.allclose(records[0].label["topic_weights"].values, predictions[0]["topic_weights"], atol=1e-6)
    for body, content_type, status, fragment in (
            (kit.encode_request(np.array([[1.0] * 24 + [-1.0]]), "text/csv"), "text/csv", 400, "word 25"),
            (b"1,2\n", "text/csv", 400, "25 features"),
            (b"{oops", "application/json", 400, "not valid JSON"),
            (b"1,2\n", "image/png", 415, "image/png")):
        with pytest.raises(InferenceError) as info:
            predictor.invoke(body, content_type, "application/json")
        assert info.value.status == status and fragment in str(info.value)


@pytest.mark.parametrize("channels, fragment", [
    ({"train": ("text/csv;label_size=0", b"1,2,3\n1,2,-3\n", "a.csv")}, "record 2: word 3 has count -3.0"),
    ({"train": ("text/csv;label_size=0", b"1,2,3\n", "a.csv"),
      "auxiliary": ("text/plain", b"one\ntwo\n", "vocab.txt")}, "expected feature_dim=3 words (one per line), got 2"),
    ({"train": ("text/csv;label_size=0", b"1,2,3\n", "a.csv"),
      "auxiliary": ("text/plain", b"one\ntwo\nthree\n", "words.txt")}, "expected a file named vocab.txt"),
    ({"train": ("application/json", b"{}", "a.json")}, "content type 'application/json' is not supported"),
])
def test_bad_training_input_fails_naming_it(tmp_path, channels, fragment):
    with pytest.raises(DataError, match=re.escape(fragment)):
        train_direct(tmp_path, {"num_topics": "2", "feature_dim": "3", "epochs": "1"}, channels)


@pytest.fixture
def sdk_session(server, monkeypatch, tmp_path):
    for name in [n for n in __import__("os").environ if n.startswith(("AWS_", "SAGEMAKER_"))]:
        monkeypatch.delenv(name)
    for name, value in client_env(server, tmp_path).items():
        if name.startswith(("AWS_", "SAGEMAKER_")):
            monkeypatch.setenv(name, value)
    return sagemaker.Session()


@pytest.mark.slow
def test_sdk_ntm_estimator_record_set_fit_deploy_predict(sdk_session):
    from sagemaker import NTM

    data = kit.topic_documents(documents=800, words=80, seed=5)
    bucket = sdk_session.default_bucket()
    ntm = NTM(role="arn:aws:iam::111122223333:role/r", instance_count=1, instance_type="ml.c5.xlarge",
              num_topics=10, epochs=8, optimizer="adam", learning_rate=0.02, batch_norm=True,
              sagemaker_session=sdk_session, output_path=f"s3://{bucket}/ntm/output",
              data_location=f"s3://{bucket}/ntm/data")
    train = ntm.record_set(data.x_train.astype("float32"))
    validation = ntm.record_set(data.x_validation.astype("float32"), channel="validation")
    ntm.fit([train, validation], mini_batch_size=64, logs=False)
    job = sdk_session.sagemaker_client.describe_training_job(TrainingJobName=ntm.latest_training_job.name)
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert 0 < metrics["validation:total_loss"] < 80 * np.log(25)  # better than every word equally likely
    predictor = ntm.deploy(initial_instance_count=1, instance_type="ml.m5.large")
    try:
        records = predictor.predict(data.x_validation[:20].astype("float32"))
    finally:
        predictor.delete_model()
        predictor.delete_endpoint()
    weights = np.array([r.label["topic_weights"].float32_tensor.values for r in records])
    assert weights.shape == (20, 10) and np.allclose(weights.sum(axis=1), 1.0, atol=1e-4)

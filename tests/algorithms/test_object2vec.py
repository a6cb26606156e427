"""Object2Vec: pairs of token sequences whose planted "topic" tokens match are told from pairs whose topics
differ by each encoder (hcnn, bilstm, pooled_embedding); regression learns a planted overlap; encoder
embeddings put same-topic sequences together; bad pairs are named; a real job -> endpoint cycle through boto3."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from builtin_flow import channel, deploy, image, invoke, metrics, model_error, put, train

from sagelab.algorithms.base import Channel, DataError, InferenceError, TrainingContext
from sagelab.algorithms.object2vec.algorithm import Object2Vec
from sagelab.errors import ValidationError
from sagelab.testing import algorithm_kit as kit

ALGO = Object2Vec()
O2V = image("object2vec")
TOPICS, VOCAB = 4, 100
SMALL = {"enc0_max_seq_len": "10", "enc0_vocab_size": str(VOCAB), "enc_dim": "32", "enc0_token_embedding_dim": "16",
         "mlp_dim": "32", "mlp_activation": "relu", "epochs": "6", "learning_rate": "0.005", "mini_batch_size": "64"}


def sequence(rng: np.random.Generator, topic: int) -> list[int]:
    """Mostly the topic's ten tokens (ids topic*10 .. topic*10+9), some shared noise tokens (40..99)."""
    return [int(topic * 10 + rng.integers(10)) if rng.random() < 0.6 else int(40 + rng.integers(60))
            for _ in range(rng.integers(4, 9))]


def pairs(n: int, seed: int, regression: bool = False) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = int(rng.integers(TOPICS))
        same = bool(rng.random() < 0.5)
        b = a if same else int((a + rng.integers(1, TOPICS)) % TOPICS)
        in0, in1 = sequence(rng, a), sequence(rng, b)
        label = float(same) * 2.0 + 1.0 if regression else int(same)
        out.append({"label": label, "in0": in0, "in1": in1})
    return out


def lines(records: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def train_direct(tmp_path, hp: dict[str, str], channels: dict[str, bytes]) -> TrainingContext:
    made = {}
    for name, body in channels.items():
        path = tmp_path / name / "pairs.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        made[name] = Channel(name, "application/jsonlines", [path])
    ctx = TrainingContext(ALGO.hyperparameters.validate(hp), made, tmp_path / "model", tmp_path / "out",
                          io.StringIO())
    ALGO.train(ctx)
    return ctx


def logged(log: str, channel_name: str, metric: str) -> float:
    return float(re.findall(rf"host=algo-1, {channel_name} {metric} <\w+>=(\S+)", log)[-1])


def test_declares_the_sagemaker_surface():
    assert ALGO.image_repositories == ("object2vec",)
    values = ALGO.hyperparameters.validate({"enc0_max_seq_len": "20", "enc0_vocab_size": "500"})
    assert (values["enc0_network"], values["enc1_network"], values["enc_dim"], values["output_layer"],
            values["comparator_list"], values["epochs"], values["mini_batch_size"]) == (
        "hcnn", "enc0", 4096, "softmax", ["hadamard", "concat", "abs_diff"], 30, 32)
    for bad, fragment in (({"enc1_network": "bilstm"}, "'enc1_max_seq_len' is required"),
                          ({"comparator_list": "hadamard, cosine"}, "'comparator_list'"),
                          ({"enc0_pretrained_embedding_file": "glove.txt"}, "not supported"),
                          ({"num_classes": "31"}, "'num_classes'")):
        with pytest.raises(ValidationError, match=re.escape(fragment)):
            ALGO.hyperparameters.validate({"enc0_max_seq_len": "20", "enc0_vocab_size": "500", **bad})
    names = {m.name for m in ALGO.metrics}
    assert {"validation:accuracy", "validation:cross_entropy", "validation:mean_squared_error",
            "test:accuracy"} <= names


@pytest.mark.parametrize("network", ["hcnn", "bilstm", "pooled_embedding"])
def test_each_encoder_tells_matching_topics_from_different_ones(tmp_path, network):
    ctx = train_direct(tmp_path, {**SMALL, "enc0_network": network, "epochs": "10"},
                       {"train": lines(pairs(2000, 1)), "validation": lines(pairs(200, 2)),
                        "test": lines(pairs(200, 3))})
    log = ctx.log.getvalue()
    assert logged(log, "validation", "accuracy") >= 0.9 and logged(log, "test", "accuracy") >= 0.9
    assert logged(log, "test", "cross_entropy") < np.log(2) / 2
    predictor = ALGO.load(ctx.model_dir)
    rng = np.random.default_rng(9)
    same = {"in0": sequence(rng, 1), "in1": sequence(rng, 1)}
    different = {"in0": sequence(rng, 1), "in1": sequence(rng, 3)}
    answer = json.loads(predictor.invoke(json.dumps({"instances": [same, different]}).encode(), "application/json",
                                         "application/json")[0])["predictions"]
    assert [len(a["scores"]) for a in answer] == [2, 2] and sum(answer[0]["scores"]) == pytest.approx(1.0, abs=1e-5)
    assert answer[0]["scores"][1] > 0.5 > answer[1]["scores"][1]


def test_encoder_embeddings_put_same_topic_sequences_together(tmp_path):
    ctx = train_direct(tmp_path, {**SMALL, "enc0_network": "pooled_embedding", "negative_sampling_rate": "1"},
                       {"train": lines(pairs(1200, 4))})
    predictor = ALGO.load(ctx.model_dir)
    rng = np.random.default_rng(5)
    topics = np.repeat(np.arange(TOPICS), 10)
    body = json.dumps({"instances": [{"in0": sequence(rng, int(t))} for t in topics]}).encode()
    payload, returned = predictor.invoke(body, "application/json; infer_max_seqlens=10,10", "application/json")
    vectors = np.array([p["embeddings"] for p in json.loads(payload)["predictions"]])
    assert returned == "application/json" and vectors.shape == (40, 32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    assert (topics[similarity.argmax(axis=1)] == topics).mean() >= 0.8
    # in1 alone goes through the same (shared) encoder: the same vectors.
    only_in1 = json.dumps({"instances": [{"in1": [1, 2, 3]}]}).encode()
    only_in0 = json.dumps({"instances": [{"in0": [1, 2, 3]}]}).encode()
    assert json.loads(predictor.invoke(only_in1, "application/json", "application/json")[0]) == json.loads(
        predictor.invoke(only_in0, "application/json", "application/json")[0])


def test_regression_learns_the_planted_value_and_the_predictor_refuses_bad_pairs(tmp_path):
    ctx = train_direct(tmp_path, {**SMALL, "enc0_network": "pooled_embedding", "output_layer": "mean_squared_error",
                                  "enc1_network": "bilstm", "enc1_max_seq_len": "10", "enc1_vocab_size": str(VOCAB),
                                  "enc1_token_embedding_dim": "16", "epochs": "12"},
                       {"train": lines(pairs(2000, 6, regression=True)),
                        "validation": lines(pairs(200, 7, regression=True))})
    mse = logged(ctx.log.getvalue(), "validation", "mean_squared_error")
    assert mse < 0.5  # the labels (1 or 3) have variance 1
    predictor = ALGO.load(ctx.model_dir)
    records = pairs(6, 8, regression=True)
    body = "".join(json.dumps({"in0": r["in0"], "in1": r["in1"]}) + "\n" for r in records).encode()
    payload, returned = predictor.invoke(body, "application/jsonlines", "application/jsonlines")
    rows = [json.loads(line) for line in payload.decode().splitlines()]
    assert returned == "application/jsonlines" and [len(r["scores"]) for r in rows] == [1] * 6
    assert np.mean(np.abs(np.array([r["scores"][0] for r in rows]) - [r["label"] for r in records])) < 1.0
    there = kit.predict_in_fresh_process(ALGO, ctx.model_dir, [(body, "application/jsonlines",
                                                                "application/jsonlines")], tmp_path / "fresh")
    assert there == [(payload, "application/jsonlines")]
    kit._assert_no_pickle(ctx.model_dir)
    for body_, content_type, status, fragment in (
            (json.dumps({"instances": [{"in0": [1], "in1": [VOCAB]}]}), "application/json", 400,
             f'Instance 1: "in1"[0] is {VOCAB}; token ids are integers 0..{VOCAB - 1}'),
            (json.dumps({"instances": [{"in0": [1], "in1": [2]}, {"in0": [3]}]}), "application/json", 400,
             "the same fields"),
            (json.dumps({"instances": [{"text": "x"}]}), "application/json", 400, 'Instance 1: expected an object'),
            ("{oops", "application/json", 400, "not valid JSON"),
            (json.dumps({"instances": [{"in0": [1]}]}), "application/json; infer_max_seqlens=x", 400,
             "infer_max_seqlens"),
            ("{}", "text/csv", 415, "text/csv")):
        with pytest.raises(InferenceError) as info:
            predictor.invoke(body_.encode(), content_type, "application/json")
        assert info.value.status == status and fragment in str(info.value), str(info.value)


@pytest.mark.parametrize("body, fragment", [
    (b'{"label": 1, "in0": [1, 2], "in1": [3]}\n{"label": 0, "in0": [1, 2], "in1": [3]\n',
     "Channel 'train', file pairs.jsonl, line 2: not valid JSON"),
    (b'{"label": 1, "in0": [1, 2]}\n', 'line 1: the record has no "in1" field'),
    (b'{"label": 2, "in0": [1], "in1": [3]}\n', '"label" is 2; with output_layer softmax it is a class id 0..1'),
    (b'{"label": 1, "in0": [1, 200], "in1": [3]}\n', '"in0"[1] is 200; token ids are integers 0..99'),
    (b'{"label": 1, "in0": [], "in1": [3]}\n', '"in0" must be a non-empty list of token ids'),
    (b'{"label": "yes", "in0": [1], "in1": [3]}\n', '"label" must be a number'),
])
def test_bad_pairs_fail_naming_the_line_and_field(tmp_path, body, fragment):
    with pytest.raises(DataError, match=re.escape(fragment)):
        train_direct(tmp_path, {**SMALL, "epochs": "1"}, {"train": body})


@pytest.fixture(scope="module")
def rt(server):
    return server.client("sagemaker-runtime")


@pytest.mark.slow
def test_job_endpoint_and_a_failing_job(sm, s3, rt, bucket):
    train_uri = put(s3, bucket, "o2v/train/pairs.jsonl", lines(pairs(1000, 11)))
    validation_uri = put(s3, bucket, "o2v/validation/pairs.jsonl", lines(pairs(200, 12)))
    hp = {**SMALL, "enc0_network": "pooled_embedding"}
    desc = train(sm, bucket, O2V, hp, [channel("train", train_uri.rsplit("/", 1)[0] + "/", "application/jsonlines"),
                                       channel("validation", validation_uri.rsplit("/", 1)[0] + "/",
                                               "application/jsonlines")])
    assert metrics(desc)["validation:accuracy"] >= 0.85
    endpoint = deploy(sm, O2V, desc)
    body = json.dumps({"instances": [{"in0": [1, 2, 3], "in1": [4, 5]}, {"in0": [1, 2]}][:1]})
    payload, returned = invoke(rt, endpoint, body, "application/json", "application/json")
    assert returned == "application/json" and len(json.loads(payload)["predictions"][0]["scores"]) == 2
    status, message = model_error(rt, endpoint, json.dumps({"instances": [{"in0": [1], "in1": [999]}]}),
                                  "application/json")
    assert status == 400 and '"in1"[0] is 999' in message
    sm.delete_endpoint(EndpointName=endpoint)
    bad_uri = put(s3, bucket, "o2v/bad/pairs.jsonl", b'{"label": 1, "in0": [1], "in1": [3]}\n{"label": 1}\n')
    failed = train(sm, bucket, O2V, hp, [channel("train", bad_uri.rsplit("/", 1)[0] + "/", "application/jsonlines")],
                   expect="Failed")
    assert 'pairs.jsonl, line 2: the record has no "in0" field' in failed["FailureReason"]

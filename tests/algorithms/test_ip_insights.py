"""IP Insights on synthetic access logs (no real entity/IP log ships with a package): each user signs in from
one or two home subnets; the model must tell those pairings from a user at someone else's subnet."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from builtin_flow import channel, deploy, image, invoke, invoke_json, metrics, model_error, put, train
from sklearn.metrics import roc_auc_score

from sagelab.algorithms.base import Channel, DataError, InferenceError, TrainingContext
from sagelab.algorithms.ip_insights.algorithm import IPInsights
from sagelab.algorithms.ip_insights.model import entity_rows, ip_bytes
from sagelab.errors import ValidationError
from sagelab.testing import algorithm_kit as kit

IPI = image("ipinsights")
SMALL = {"num_entity_vectors": "400", "vector_dim": "16", "epochs": "6", "mini_batch_size": "250",
         "learning_rate": "0.01"}


class AccessLogs:
    def __init__(self, seed: int = 0, users: int = 200, subnets: int = 120):
        self.rng = np.random.default_rng(seed)
        self.subnets = [".".join(str(v) for v in (self.rng.integers(1, 224), *self.rng.integers(0, 256, size=2)))
                        for _ in range(subnets)]
        self.homes = {f"user{i}": self.rng.choice(subnets, size=self.rng.integers(1, 3), replace=False)
                      for i in range(users)}

    def usual(self, n: int) -> list[tuple[str, str]]:
        users = self.rng.choice(list(self.homes), size=n)
        return [(u, f"{self.subnets[self.rng.choice(self.homes[u])]}.{self.rng.integers(1, 255)}") for u in users]

    def unusual(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        out = []
        for user, _ in pairs:
            subnet = self.rng.choice([s for i, s in enumerate(self.subnets) if i not in self.homes[user]])
            out.append((user, f"{subnet}.{self.rng.integers(1, 255)}"))
        return out


def csv_pairs(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"{user},{address}\n" for user, address in pairs)


def context(tmp_path: Path, hp: dict[str, str], channels: dict[str, tuple[str, str]]) -> TrainingContext:
    made = {}
    for name, (content_type, text) in channels.items():
        path = tmp_path / name / "00000-part.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        made[name] = Channel(name, content_type, [path])
    return TrainingContext(hp, made, tmp_path / "model", tmp_path / "output", io.StringIO())


@pytest.fixture(scope="module")
def rt(server):
    return server.client("sagemaker-runtime")


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    logs = AccessLogs()
    tmp = tmp_path_factory.mktemp("ipinsights")
    ctx = context(tmp, SMALL, {"train": ("text/csv", csv_pairs(logs.usual(3000))),
                               "validation": ("text/csv", csv_pairs(logs.usual(400)))})
    IPInsights().train(ctx)
    return ctx, logs


def test_declared_surface():
    ipi = IPInsights()
    assert ipi.image_repositories == ("ipinsights",)
    assert set(ipi.hyperparameters.by_name()) == {
        "num_entity_vectors", "vector_dim", "batch_metrics_publish_interval", "epochs", "learning_rate",
        "mini_batch_size", "num_ip_encoder_layers", "random_negative_sampling_rate",
        "shuffled_negative_sampling_rate", "weight_decay"}
    values = ipi.hyperparameters.validate({"num_entity_vectors": "10", "vector_dim": "4"})
    assert (values["epochs"], values["learning_rate"], values["mini_batch_size"], values["num_ip_encoder_layers"],
            values["weight_decay"]) == (10, 0.001, 10000, 1, 0.00001)
    with pytest.raises(ValidationError, match="must add up to 1..500"):
        ipi.hyperparameters.validate({"num_entity_vectors": "10", "vector_dim": "4",
                                      "random_negative_sampling_rate": "0", "shuffled_negative_sampling_rate": "0"})
    assert [(c.name, c.required, c.content_types) for c in ipi.channels] == [
        ("train", True, ("text/csv",)), ("validation", False, ("text/csv",))]
    assert {m.name: m.direction for m in ipi.metrics}["validation:discriminator_auc"] == "Maximize"


def test_addresses_and_entity_hashing():
    assert ip_bytes("10.0.0.1").tolist() == [0] * 10 + [255, 255, 10, 0, 0, 1]
    assert ip_bytes("2001:db8::1")[:2].tolist() == [0x20, 0x01]
    assert ip_bytes("10.0.0.256") is None and ip_bytes("user7") is None
    rows = entity_rows(["alice", "bob", "alice"], 1000)
    assert rows[0] == rows[2] and rows.min() >= 0 and rows.max() < 1000
    assert entity_rows(["alice"], 1000)[0] == 469  # BLAKE2b: the same row in every process and release


def test_training_reports_auc_and_the_model_answers_in_every_format(small_model):
    ctx, logs = small_model
    log = ctx.log.getvalue()
    auc = float(re.findall(r"#quality_metric: host=algo-1, validation discriminator_auc <score>=(\S+)", log)[-1])
    assert auc >= 0.95
    assert re.search(r"epoch=5, train binary_classification_cross_entropy <loss>=", log)
    predictor = IPInsights().load(ctx.model_dir)
    usual = logs.usual(200)
    body = csv_pairs(usual + logs.unusual(usual)).encode()
    dots = [p["dot_product"] for p in json.loads(predictor.invoke(body, "text/csv", "application/json")[0])[
        "predictions"]]
    assert roc_auc_score(np.r_[np.ones(200), np.zeros(200)], dots) >= 0.9
    one = [usual[0]]
    as_json = json.dumps({"instances": [{"features": list(one[0])}]}).encode()
    as_data = json.dumps({"instances": [{"data": {"features": {"values": list(one[0])}}}]}).encode()
    as_lines = (json.dumps({"features": list(one[0])}) + "\n").encode()
    answers = [json.loads(predictor.invoke(b, t, "application/json")[0])["predictions"][0]["dot_product"]
               for b, t in ((as_json, "application/json"), (as_data, "application/json"),
                            (as_lines, "application/jsonlines"), (csv_pairs(one).encode(), "text/csv"))]
    assert answers == pytest.approx([dots[0]] * 4, rel=1e-12)
    verbose = json.loads(predictor.invoke(as_json, "application/json", "application/json; verbose=True")[0])
    first = verbose["predictions"][0]
    assert set(first) == {"dot_product", "entity_embedding", "ip_embedding"} and len(first["ip_embedding"]) == 16
    assert np.dot(first["entity_embedding"], first["ip_embedding"]) == pytest.approx(first["dot_product"])
    line, returned = predictor.invoke(as_json, "application/json", "application/jsonlines")
    assert returned == "application/jsonlines" and json.loads(line)["dot_product"] == pytest.approx(dots[0])
    for body_, content_type, accept, status, fragment in (
            (b"\x0a\xd7\x23\xce", "application/x-recordio-protobuf", "application/json", 415, "text/csv"),
            (csv_pairs(one).encode(), "text/csv", "text/csv", 406, "application/json"),
            (b"alice,10.0.0.300\n", "text/csv", "application/json", 400, "'10.0.0.300' is not an IPv4 or IPv6"),
            (b"alice\n", "text/csv", "application/json", 400, "an entity and an IP address"),
            (b'{"instances": [{"features": ["a", "b", "c"]}]}', "application/json", "application/json", 400,
             "Instance 1"),
            (b"", "text/csv", "application/json", 400, "empty")):
        with pytest.raises(InferenceError) as info:
            predictor.invoke(body_, content_type, accept)
        assert info.value.status == status and fragment in str(info.value)


def test_fresh_process_and_retraining_answer_identically(small_model, tmp_path):
    ctx, logs = small_model
    body = csv_pairs(logs.usual(20)).encode()
    here = IPInsights().load(ctx.model_dir).invoke(body, "text/csv", "application/json")
    there = kit.predict_in_fresh_process(IPInsights(), ctx.model_dir, [(body, "text/csv", "application/json")],
                                         tmp_path / "fresh")
    assert there == [here]
    kit._assert_no_pickle(ctx.model_dir)
    again = context(tmp_path / "again", SMALL, {name: ("text/csv", c.files[0].read_text())
                                                for name, c in ctx.channels.items()})
    IPInsights().train(again)
    assert IPInsights().load(again.model_dir).invoke(body, "text/csv", "application/json") == here


@pytest.mark.parametrize("channels, hp, fragment", [
    ({"train": ("text/csv", "alice,10.0.0.1,extra\n")}, {}, "line 1: expected entity_id,ip_address (2 columns)"),
    ({"train": ("text/csv", "alice,10.0.0.1\nbob,not-an-ip\n")}, {}, "line 2: 'not-an-ip' is not an IPv4"),
    ({"train": ("text/csv", "\n\n")}, {}, "holds no entity,IP address lines"),
    ({"train": ("application/x-recordio-protobuf", "x")}, {}, "reads text/csv"),
    ({"train": ("text/csv", "alice,10.0.0.1\n")}, {"num_entity_vectors": "100000000", "vector_dim": "4096"},
     "more than sagelab trains on one machine"),
])
def test_bad_training_data_fails_with_the_reason(tmp_path, channels, hp, fragment):
    values = {"num_entity_vectors": "10", "vector_dim": "4", **hp}
    with pytest.raises(DataError, match=re.escape(fragment)):
        IPInsights().train(context(tmp_path, values, channels))


@pytest.mark.slow
def test_access_log_job_endpoint_and_anomalies(sm, s3, rt, bucket):
    logs = AccessLogs(seed=1)
    train_uri = put(s3, bucket, "ipi/train/logs.csv", csv_pairs(logs.usual(5000)))
    valid_uri = put(s3, bucket, "ipi/validation/logs.csv", csv_pairs(logs.usual(500)))
    desc = train(sm, bucket, IPI, {**SMALL, "vector_dim": "32", "epochs": "8"},
                 [channel("train", train_uri), channel("validation", valid_uri)])
    assert metrics(desc)["validation:discriminator_auc"] >= 0.95
    endpoint = deploy(sm, IPI, desc)
    usual = logs.usual(100)
    dots = [p["dot_product"] for p in invoke_json(rt, endpoint, csv_pairs(usual + logs.unusual(usual)),
                                                   "text/csv")["predictions"]]
    assert roc_auc_score(np.r_[np.ones(100), np.zeros(100)], dots) >= 0.9
    verbose = invoke_json(rt, endpoint, json.dumps({"instances": [{"features": list(usual[0])}]}),
                          "application/json", "application/json; verbose=True")["predictions"][0]
    assert verbose["dot_product"] == pytest.approx(dots[0]) and len(verbose["entity_embedding"]) == 32
    lines, _ = invoke(rt, endpoint, "".join(json.dumps({"features": list(p)}) + "\n" for p in usual[:3]),
                      "application/jsonlines", "application/jsonlines")
    assert [json.loads(line)["dot_product"] for line in lines.decode().splitlines()] == pytest.approx(dots[:3])
    status, message = model_error(rt, endpoint, "user1,999.1.1.1", "text/csv")
    assert status == 400 and "999.1.1.1" in message
    assert model_error(rt, endpoint, b"\x0a\xd7\x23\xce", "application/x-recordio-protobuf")[0] == 415
    sm.delete_endpoint(EndpointName=endpoint)

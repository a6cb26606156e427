"""Seq2Seq: a planted translation (a fixed word dictionary, the sentence reversed) is learned to a BLEU near 1
with attention that points at the mirrored source word; every attention type, GRU cells and the CNN encoder
learn; the predictor answers AWS's JSON, recordIO-protobuf and JSON Lines shapes; bad data is named; a real
job -> endpoint -> batch transform cycle through boto3."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from builtin_flow import (
    channel,
    create_model,
    deploy,
    image,
    invoke,
    metrics,
    model_error,
    put,
    train,
    transform,
)
from seq2seq_data import encode, planted, translate, write_corpus

from sagelab.algorithms.base import Channel, DataError, InferenceError, TrainingContext
from sagelab.algorithms.first_party import recordio
from sagelab.algorithms.seq2seq.algorithm import Seq2Seq
from sagelab.algorithms.seq2seq.data import response_targets, write_pairs, write_request
from sagelab.errors import ValidationError
from sagelab.testing import algorithm_kit as kit

ALGO = Seq2Seq()
S2S = image("seq2seq")
PROTOBUF = "application/x-recordio-protobuf"
SMALL = {"rnn_num_hidden": "32", "num_embed_source": "16", "num_embed_target": "16", "batch_size": "32",
         "learning_rate": "0.01", "checkpoint_frequency_num_batches": "40", "max_num_batches": "120",
         "beam_size": "3"}


def train_direct(folder: Path, hp: dict[str, str], folders: dict[str, Path] | None = None) -> TrainingContext:
    folders = folders or write_corpus(folder / "data", planted(600, 1), planted(40, 2))
    channels = {name: Channel(name, PROTOBUF, sorted(path.iterdir())) for name, path in folders.items()}
    ctx = TrainingContext(ALGO.hyperparameters.validate(hp), channels, folder / "model", folder / "out", io.StringIO())
    ALGO.train(ctx)
    return ctx


def logged(log: str, metric: str) -> float:
    return float(re.findall(rf"host=algo-1, validation {metric} <\w+>=(\S+)", log)[-1])


def ask(predictor, body: dict | str, content_type: str = "application/json", accept: str = "application/json"):
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    payload, returned = predictor.invoke(raw.encode() if isinstance(raw, str) else raw, content_type, accept)
    assert returned == content_type.split(";")[0]
    return payload


def test_declares_the_sagemaker_surface_and_passes_the_static_kit():
    for check in kit.STATIC_CHECKS:
        check(ALGO)
    assert ALGO.image_repositories == ("seq2seq",)
    assert [(c.name, c.required) for c in ALGO.channels] == [("train", True), ("validation", True), ("vocab", True)]
    values = ALGO.hyperparameters.validate({})
    assert (values["batch_size"], values["beam_size"], values["bleu_sample_size"], values["bucket_width"],
            values["checkpoint_frequency_num_batches"], values["rnn_num_hidden"], values["rnn_attention_type"],
            values["learning_rate"], values["optimized_metric"], values["max_num_batches"],
            values["lr_scheduler_type"], values["clip_gradient"]) == (
        64, 5, 0, 10, 1000, 1024, "mlp", 0.0003, "perplexity", -1, "plateau_reduce", 1.0)
    directions = {m.name: m.direction for m in ALGO.metrics}
    assert {k: directions[k] for k in ("validation:perplexity", "validation:accuracy", "validation:bleu")} == {
        "validation:perplexity": "Minimize", "validation:accuracy": "Maximize", "validation:bleu": "Maximize"}
    for bad, fragment in (({"decoder_type": "cnn"}, "'decoder_type'"), ({"rnn_num_hidden": "33"}, "'rnn_num_hidden'"),
                          ({"momentum": "0.9"}, "'momentum'"), ({"rnn_attention_type": "luong"}, "rnn_attention_type"),
                          ({"max_num_batches": "0"}, "'max_num_batches'"), ({"beam": "3"}, "'beam'")):
        with pytest.raises(ValidationError, match=re.escape(fragment)):
            ALGO.hyperparameters.validate(bad)
    assert ALGO.hyperparameters.validate({"optimizer_type": "sgd", "momentum": "0.9"})["momentum"] == 0.9


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    folder = tmp_path_factory.mktemp("s2s")
    return train_direct(folder, {**SMALL, "optimized_metric": "bleu", "bleu_sample_size": "20"})


def test_a_planted_translation_is_learned(translator):
    log = translator.log.getvalue()
    assert logged(log, "bleu") >= 0.9 and logged(log, "accuracy") >= 0.95 and logged(log, "perplexity") < 1.2
    case = kit.Case("seq2seq", Seq2Seq, SMALL, kit.iris)  # the kit only reads the log here, never the data
    fitted = kit.Fitted(case, ALGO, None, translator.model_dir, log)
    values = kit.check_metrics_emitted(case, Path("."), fitted,
                                       expected=("validation:bleu", "validation:accuracy", "validation:perplexity"))
    assert values["validation:bleu"] >= 0.9
    predictor = ALGO.load(translator.model_dir)
    sources, _ = planted(8, 99)
    answer = json.loads(ask(predictor, {"instances": [{"data": s} for s in sources]}))["predictions"]
    assert sum(a["target"] == translate(s) for a, s in zip(answer, sources, strict=True)) >= 7
    assert all("matrix" not in a for a in answer)


def test_json_attention_matrix_points_at_the_mirrored_word(translator):
    predictor = ALGO.load(translator.model_dir)
    source = "s3 s1 s4 s1 s5"
    body = {"instances": [{"data": source, "configuration": {"attention_matrix": "true"}},
                          {"data": "s2 zebra s7"}, {"data": "s6 s2 s9", "configuration": {"attention_matrix": True}}]}
    first, second, third = json.loads(ask(predictor, body))["predictions"]
    assert first["target"] == translate(source)
    matrix = np.array(first["matrix"])
    assert matrix.shape == (5, 5) and np.allclose(matrix.sum(axis=1), 1.0, atol=1e-5)
    assert list(matrix.argmax(axis=1)) == [4, 3, 2, 1, 0]  # reversed: target word j reads source word 4 - j
    assert "matrix" not in second and isinstance(second["target"], str)  # "zebra" is read as <unk>
    assert third["target"] == translate("s6 s2 s9") and np.array(third["matrix"]).shape == (3, 3)  # its own length


def test_protobuf_and_jsonlines_answer_the_same_translations(translator, tmp_path):
    predictor = ALGO.load(translator.model_dir)
    vocab_src = json.loads((translator.model_dir / "vocab.src.json").read_text())
    vocab_trg = json.loads((translator.model_dir / "vocab.trg.json").read_text())
    sources, _ = planted(5, 7)
    body = write_request(encode(sources, vocab_src))
    payload = ask(predictor, body, PROTOBUF, PROTOBUF)
    records = recordio.read_records(payload)
    words = {i: w for w, i in vocab_trg.items()}
    protobuf = [" ".join(words[int(i)] for i in r.features["target"].values) for r in records]
    assert all(r.features["target"].kind == "int32" for r in records)
    lines = "".join(json.dumps({"source": s}) + "\n" for s in sources)
    jsonlines = [json.loads(line)["target"]
                 for line in ask(predictor, lines, "application/jsonlines", "application/jsonlines").decode().split("\n")
                 if line]
    as_json = [p["target"] for p in json.loads(ask(predictor, {"instances": [{"data": s} for s in sources]}))[
        "predictions"]]
    assert protobuf == jsonlines == as_json
    # Sentences are searched together; each comes out as it would alone.
    alone = [json.loads(ask(predictor, {"instances": [{"data": s}]}))["predictions"][0]["target"] for s in sources]
    assert alone == as_json
    assert sum(t == translate(s) for t, s in zip(protobuf, sources, strict=True)) >= 4
    # "application/json" Accept on a JSON request, no Accept, "*/*": the same bytes in a fresh process.
    requests = [(body, PROTOBUF, PROTOBUF), (lines.encode(), "application/jsonlines", "*/*"),
                (json.dumps({"instances": [{"data": sources[0]}]}).encode(), "application/json", "")]
    here = [predictor.invoke(*r) for r in requests]
    assert kit.predict_in_fresh_process(ALGO, translator.model_dir, requests, tmp_path / "fresh") == here
    kit._assert_no_pickle(translator.model_dir)


def test_the_predictor_refuses_bad_requests_naming_what_is_wrong(translator):
    predictor = ALGO.load(translator.model_dir)
    size = len(json.loads((translator.model_dir / "vocab.src.json").read_text()))
    for body, content_type, accept, status, fragment in (
            (b"s1,s2", "text/csv", "text/csv", 415, "text/csv"),
            (b'{"instances": [{"data": "s1"}]}', "application/json", PROTOBUF, 406, "differs from Content-Type"),
            (b'{"instances": [{"data": "s1"}]}', "application/json", "text/csv", 406, "text/csv"),
            (b"{oops", "application/json", "application/json", 400, "not valid JSON"),
            (b'{"instances": [{"source": "s1"}]}', "application/json", "application/json", 400,
             'Instance 1: expected an object with "data"'),
            (b'{"instances": [{"data": 5}]}', "application/json", "application/json", 400, '"data" must be'),
            (b'{"source": "s1"}\n{"src": 1}\n', "application/jsonlines", "application/jsonlines", 400,
             "JSON Lines line 2"),
            (write_request([[4, 5], [4, size]]), PROTOBUF, PROTOBUF, 400,
             f'record 2: features["source"][1] is {size}'),
            (write_request([[4, 5]])[:-3], PROTOBUF, PROTOBUF, 400, "record 1"),
            (b"", "application/json", "application/json", 400, "empty")):
        with pytest.raises(InferenceError) as info:
            predictor.invoke(body, content_type, accept)
        assert info.value.status == status and fragment in str(info.value), str(info.value)
    # Response records hold the ids in features["target"], as the example notebook reads them.
    assert recordio.read_records(response_targets([[4, 5]]))[0].features["target"].values.tolist() == [4, 5]


@pytest.mark.parametrize("extra, accuracy", [
    ({"rnn_attention_type": "dot"}, 0.9),
    ({"rnn_attention_type": "bilinear", "rnn_cell_type": "gru", "rnn_decoder_state_init": "avg"}, 0.9),
    ({"encoder_type": "cnn", "cnn_num_hidden": "32", "num_layers_encoder": "2", "rnn_attention_type": "dot"}, 0.9),
    # Fixed attention sees only the average of the source: the words, not their order.
    ({"rnn_attention_type": "fixed", "rnn_decoder_state_init": "zero"}, 0.3),
])
def test_each_attention_type_cell_and_encoder_learns(tmp_path, extra, accuracy):
    ctx = train_direct(tmp_path, {**SMALL, **extra})
    assert logged(ctx.log.getvalue(), "accuracy") >= accuracy, ctx.log.getvalue()[-800:]


def test_training_is_seeded_and_options_run(tmp_path):
    hp = {**SMALL, "rnn_attention_type": "dot", "max_num_batches": "30", "checkpoint_frequency_num_batches": "10",
          "num_layers_encoder": "2", "num_layers_decoder": "2", "rnn_residual_connections": "true",
          "optimizer_type": "sgd", "momentum": "0.9", "learning_rate": "0.1", "lr_scheduler_type": "fixed_rate_inv_t",
          "fixed_rate_lr_half_life": "1", "clip_gradient": "-1", "max_seq_len_source": "4", "max_seq_len_target": "5",
          "bucketing_enabled": "false", "weight_init_type": "uniform", "weight_init_scale": "0.1"}
    folders = write_corpus(tmp_path / "data", planted(200, 3), planted(20, 4))
    one = train_direct(tmp_path / "one", hp, folders)
    two = train_direct(tmp_path / "two", hp, folders)
    assert "were truncated" in one.log.getvalue()
    body = json.dumps({"instances": [{"data": s} for s in planted(6, 5)[0]]}).encode()
    assert ALGO.load(one.model_dir).invoke(body, "application/json", "") == \
        ALGO.load(two.model_dir).invoke(body, "application/json", "")
    three = train_direct(tmp_path / "three", {**SMALL, "max_num_epochs": "1", "optimizer_type": "rmsprop",
                                              "lr_scheduler_type": "fixed_rate_inv_sqrt_t"}, folders)
    assert "after 7 batches, 1 epoch(s)" in three.log.getvalue()
    # No batch or epoch limit: training stops once validation accuracy stops improving, keeping the best.
    four = train_direct(tmp_path / "four", {**SMALL, "rnn_attention_type": "dot", "optimized_metric": "accuracy",
                                            "checkpoint_threshold": "1", "checkpoint_frequency_num_batches": "10",
                                            "max_num_batches": "-1"}, folders)
    kept, last = map(int, re.findall(r"Keeping checkpoint (\d+) of (\d+)", four.log.getvalue())[0])
    assert "Stopping after checkpoint" in four.log.getvalue() and kept == last - 1
    accuracies = [float(v) for v in re.findall(r"checkpoint=\d+, validation accuracy <score>=(\S+)",
                                                four.log.getvalue())]
    assert logged(four.log.getvalue(), "accuracy") == max(accuracies) == accuracies[kept - 1]


def _bad(folder: Path, what: str) -> dict[str, Path]:
    folders = write_corpus(folder, planted(20, 1), planted(5, 2))
    vocab = json.loads((folders["vocab"] / "vocab.trg.json").read_text())
    if what == "missing vocab":
        (folders["vocab"] / "vocab.trg.json").unlink()
    elif what == "bad specials":
        (folders["vocab"] / "vocab.src.json").write_text(json.dumps({"<unk>": 0, "<pad>": 1, "<s>": 2, "</s>": 3}))
    elif what == "id beyond vocab":
        (folders["train"] / "train.rec").write_bytes(write_pairs([[4, 5], [4]], [[4], [4, len(vocab) + 2]]))
    elif what == "float tensor":
        record = recordio.Record(features={"source": recordio.Tensor(np.array([4.0, 5.0], np.float32)),
                                           "target": recordio.Tensor(np.array([4], np.int32), kind="int32")})
        (folders["train"] / "train.rec").write_bytes(recordio.frame_records([recordio.encode_record(record)]))
    elif what == "no target":
        record = recordio.Record(features={"source": recordio.Tensor(np.array([4], np.int32), kind="int32")})
        (folders["validation"] / "val.rec").write_bytes(recordio.frame_records([recordio.encode_record(record)]))
    elif what == "not recordio":
        (folders["train"] / "train.rec").write_text("s1 s2\tt1 t2\n")
    return folders


@pytest.mark.parametrize("what, fragment", [
    ("missing vocab", "Channel 'vocab' has no vocab.trg.json (it holds vocab.src.json)"),
    ("bad specials", "vocab.src.json: the special symbol '<pad>' must have id 0"),
    ("id beyond vocab", "Channel 'train', file train.rec, record 2: features[\"target\"][1] is"),
    ("float tensor", "file train.rec, record 1: features[\"source\"] is a float32 tensor"),
    ("no target", "Channel 'validation', file val.rec, record 1: the record has no target sequence"),
    ("not recordio", "Channel 'train', file train.rec, record 1: bad magic number"),
])
def test_bad_data_fails_naming_the_file_record_and_field(tmp_path, what, fragment):
    with pytest.raises(DataError, match=re.escape(fragment)):
        train_direct(tmp_path, {**SMALL, "max_num_batches": "1"}, _bad(tmp_path / "data", what))


@pytest.fixture(scope="module")
def rt(server):
    return server.client("sagemaker-runtime")


def _upload(s3, bucket: str, prefix: str, folders: dict[str, Path]) -> list[dict]:
    out = []
    for name, folder in folders.items():
        for path in sorted(folder.iterdir()):
            put(s3, bucket, f"{prefix}/{name}/{path.name}", path.read_bytes())
        out.append(channel(name, f"s3://{bucket}/{prefix}/{name}/", None))
    return out


@pytest.mark.slow
def test_job_endpoint_batch_transform_and_failing_jobs(sm, s3, rt, bucket, tmp_path):
    folders = write_corpus(tmp_path / "data", planted(600, 11), planted(40, 12))
    channels = _upload(s3, bucket, "s2s", folders)
    hp = {**SMALL, "bleu_sample_size": "10", "max_num_batches": "80"}
    desc = train(sm, bucket, S2S, hp, channels)
    found = metrics(desc)
    assert found["validation:bleu"] >= 0.8 and found["validation:accuracy"] >= 0.9, found
    endpoint = deploy(sm, S2S, desc)
    sources, _ = planted(4, 13)
    payload, returned = invoke(rt, endpoint, json.dumps({"instances": [
        {"data": sources[0], "configuration": {"attention_matrix": "true"}}]}), "application/json", "application/json")
    answer = json.loads(payload)["predictions"][0]
    assert returned == "application/json" and len(answer["matrix"]) == len(answer["target"].split())
    vocab_src = json.loads((folders["vocab"] / "vocab.src.json").read_text())
    payload, returned = invoke(rt, endpoint, write_request(encode(sources, vocab_src)), PROTOBUF, PROTOBUF)
    assert returned == PROTOBUF and len(recordio.read_records(payload)) == 4
    status, message = model_error(rt, endpoint, "s1 s2", "text/csv")
    assert status == 415 and "text/csv" in message
    sm.delete_endpoint(EndpointName=endpoint)

    lines = "".join(json.dumps({"source": s}) + "\n" for s in sources)
    source_uri = put(s3, bucket, "s2s/batch/in.jsonl", lines)
    batch = transform(sm, create_model(sm, S2S, desc), source_uri, f"s3://{bucket}/s2s/batch-out",
                      content_type="application/jsonlines", split="Line", accept="application/jsonlines")
    assert batch["TransformJobStatus"] == "Completed", batch.get("FailureReason")
    out = s3.get_object(Bucket=bucket, Key="s2s/batch-out/in.jsonl.out")["Body"].read().decode().splitlines()
    targets = [json.loads(line)["target"] for line in out]
    assert len(targets) == 4 and sum(t == translate(s) for t, s in zip(targets, sources, strict=True)) >= 3

    s3.delete_object(Bucket=bucket, Key="s2s/vocab/vocab.src.json")
    failed = train(sm, bucket, S2S, hp, channels, expect="Failed")
    assert "Channel 'vocab' has no vocab.src.json" in failed["FailureReason"]
    with pytest.raises(sm.exceptions.ClientError, match="ContentType 'text/csv' is not supported"):
        train(sm, bucket, S2S, hp, [channel("train", f"s3://{bucket}/s2s/train/", "text/csv"), *channels[1:]])
    with pytest.raises(sm.exceptions.ClientError, match="decoder_type"):
        train(sm, bucket, S2S, {**hp, "decoder_type": "cnn"}, channels)

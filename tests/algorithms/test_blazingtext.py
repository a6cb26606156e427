"""BlazingText: Word2Vec modes recover planted synonyms (subwords give unseen words a vector), supervised mode
learns planted keyword classes from fastText lines, JSON Lines and an augmented manifest, the artifacts are
fastText's, bad input is named, and a real job -> endpoint cycle answers in AWS's formats."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from builtin_flow import channel, deploy, image, invoke, metrics, model_error, put, train

from sagelab.algorithms.base import Channel, DataError, InferenceError, TrainingContext
from sagelab.algorithms.blazingtext.algorithm import BlazingText
from sagelab.algorithms.first_party.recordio import frame_records
from sagelab.errors import ValidationError
from sagelab.testing import algorithm_kit as kit

ALGO = BlazingText()
BT = image("blazingtext")
GROUPS = 8
W2V = {"vector_dim": "30", "epochs": "10", "min_count": "2", "sampling_threshold": "0.001", "evaluation": "false"}
SUPERVISED = {"mode": "supervised", "epochs": "10", "vector_dim": "20", "min_count": "1", "buckets": "20000",
              "learning_rate": "0.5"}


def synonyms_corpus(sentences: int = 4000, seed: int = 0) -> tuple[str, list[str]]:
    """Sentences in which the three synonyms of each group appear among that group's own context words (plus
    filler): the distributional hypothesis, planted. Returns (text, the synonyms in groups of three)."""
    rng = np.random.default_rng(seed)
    groups = [[f"syn{g}{s}" for s in "abc"] for g in range(GROUPS)]
    contexts = [[f"ctx{g}x{i}" for i in range(6)] for g in range(GROUPS)]
    filler = [f"filler{i}" for i in range(400)]
    lines = []
    for _ in range(sentences):
        g = int(rng.integers(GROUPS))
        tokens = [*rng.choice(contexts[g], 3), rng.choice(groups[g]), *rng.choice(filler, 4)]
        rng.shuffle(tokens)
        lines.append(" ".join(tokens))
    return "\n".join(lines) + "\n", [w for group in groups for w in group]


def topic_texts(documents: int, seed: int) -> list[tuple[int, str]]:
    """(class, text): each class has its own keywords, mixed into shared filler."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(documents):
        label = int(rng.integers(3))
        words = [*rng.choice([f"key{label}w{i}" for i in range(10)], 2), *rng.choice([f"w{i}" for i in range(200)], 6)]
        rng.shuffle(words)
        out.append((label, " ".join(words)))
    return out


def fasttext_lines(pairs: list[tuple[int, str]]) -> str:
    return "".join(f"__label__{label} {text}\n" for label, text in pairs)


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


def vectors(predictor, words: list[str]) -> np.ndarray:
    payload, returned = predictor.invoke(json.dumps({"instances": words}).encode(), "application/json",
                                         "application/json")
    assert returned == "application/json"
    answer = json.loads(payload)
    assert [item["word"] for item in answer] == words and list(answer[0]) == ["vector", "word"]
    return np.array([item["vector"] for item in answer])


def test_declares_the_sagemaker_surface():
    assert ALGO.image_repositories == ("blazingtext",)
    values = ALGO.hyperparameters.validate({"mode": "skipgram"})
    assert (values["vector_dim"], values["window_size"], values["min_count"], values["subwords"],
            values["min_char"], values["max_char"], values["buckets"], values["evaluation"]) == (
        100, 5, 5, False, 3, 6, 2_000_000, True)
    with pytest.raises(ValidationError, match="'mode' is required"):
        ALGO.hyperparameters.validate({})
    with pytest.raises(ValidationError, match="'min_char'"):
        ALGO.hyperparameters.validate({"mode": "skipgram", "min_char": "5", "max_char": "4"})
    with pytest.raises(ValidationError, match="'sampling_threshold'"):
        ALGO.hyperparameters.validate({"mode": "cbow", "sampling_threshold": "0.01"})
    assert {m.name: m.direction for m in ALGO.metrics} == {
        "train:mean_rho": "Maximize", "train:accuracy": "Maximize", "validation:accuracy": "Maximize"}
    assert [(c.name, c.required) for c in ALGO.channels] == [("train", True), ("validation", False)]


@pytest.mark.parametrize("mode", ["skipgram", "cbow", "batch_skipgram"])
def test_word2vec_puts_planted_synonyms_nearest(tmp_path, mode):
    text, words = synonyms_corpus()
    ctx = train_direct(tmp_path, {"mode": mode, **W2V}, {"train": ("text/plain", text.encode())})
    predictor = ALGO.load(ctx.model_dir)
    found = vectors(predictor, words)
    found /= np.linalg.norm(found, axis=1, keepdims=True)
    similarity = found @ found.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = similarity.argmax(axis=1)
    assert (nearest // 3 == np.arange(len(words)) // 3).mean() >= 0.9
    # vectors.txt is word2vec's text format and holds the same vectors; vectors.bin is fastText's model file.
    header, *rows = (ctx.model_dir / "vectors.txt").read_text().splitlines()
    count, dim = (int(v) for v in header.split())
    assert dim == 30 and count == len(rows) and count >= len(words) + GROUPS * 6
    in_text = {row.split()[0]: np.array(row.split()[1:], dtype=float) for row in rows}
    assert np.allclose(in_text[words[0]], vectors(predictor, [words[0]])[0], atol=1e-5)
    assert (ctx.model_dir / "vectors.bin").read_bytes()[:4] == b"\xba\x16\x4f\x2f"  # fastText's magic number
    # Never seen without subwords: zeros, as on AWS.
    assert not vectors(predictor, ["neverseenword"]).any()
    kit._assert_no_pickle(ctx.model_dir)


def test_subwords_give_unseen_words_vectors_near_their_relatives(tmp_path):
    text, words = synonyms_corpus()
    ctx = train_direct(tmp_path, {"mode": "skipgram", **W2V, "subwords": "true", "buckets": "50000",
                                  "min_char": "3", "max_char": "5"},
                       {"train": ("text/plain", text.encode())})
    predictor = ALGO.load(ctx.model_dir)
    unseen, seen_relative, stranger = vectors(predictor, ["ctx3x1zz", "ctx3x1", "filler77"])
    assert unseen.any()

    def cosine(a, b):
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    assert cosine(unseen, seen_relative) > cosine(unseen, stranger) + 0.1


def test_evaluation_reports_whether_ws353_is_available(tmp_path):
    text, _ = synonyms_corpus(sentences=500)
    ctx = train_direct(tmp_path, {"mode": "skipgram", **W2V, "evaluation": "true"},
                       {"train": ("text/plain", text.encode())})
    log = ctx.log.getvalue()
    # WS-353's words are not in this corpus's vocabulary: with the data set or without it, no mean_rho.
    assert "no mean_rho" in log and "#mean_rho" not in log


def test_word2vec_fresh_process_and_retraining_answer_identically(tmp_path):
    text, words = synonyms_corpus(sentences=1500)
    ctx = train_direct(tmp_path / "one", {"mode": "cbow", **W2V}, {"train": ("text/plain", text.encode())})
    body = json.dumps({"instances": words[:5]}).encode()
    here = ALGO.load(ctx.model_dir).invoke(body, "application/json", "application/json")
    there = kit.predict_in_fresh_process(ALGO, ctx.model_dir, [(body, "application/json", "application/json")],
                                         tmp_path / "fresh")
    assert there == [here]
    again = train_direct(tmp_path / "two", {"mode": "cbow", **W2V}, {"train": ("text/plain", text.encode())})
    assert ALGO.load(again.model_dir).invoke(body, "application/json", "application/json") == here


def test_supervised_learns_planted_classes_from_each_input_format(tmp_path):
    train_pairs, validation_pairs = topic_texts(1500, seed=1), topic_texts(300, seed=2)
    manifest = "".join(json.dumps({"source": text, "label": label}) + "\n" for label, text in train_pairs)
    augmented = frame_records([item for label, text in train_pairs
                               for item in (text.encode(), str(label).encode())])
    predictions = []
    for name, train_input in (("text", ("text/plain", fasttext_lines(train_pairs).encode())),
                              ("jsonlines", ("application/jsonlines", manifest.encode())),
                              ("augmented", ("application/x-recordio", augmented))):
        ctx = train_direct(tmp_path / name, SUPERVISED, {
            "train": train_input, "validation": ("text/plain", fasttext_lines(validation_pairs).encode())})
        log = ctx.log.getvalue()
        accuracy = float(re.findall(r"#validation_accuracy: (\S+)", log)[-1])
        assert accuracy >= 0.95, log
        assert float(re.findall(r"#train_accuracy: (\S+)", log)[-1]) >= 0.95
        assert (ctx.model_dir / "model.bin").is_file()
        predictor = ALGO.load(ctx.model_dir)
        body = json.dumps({"instances": [text for _, text in validation_pairs[:20]],
                           "configuration": {"k": 2}}).encode()
        payload, returned = predictor.invoke(body, "application/json", "application/json")
        answer = json.loads(payload)
        assert returned == "application/json" and isinstance(answer, list) and len(answer) == 20
        assert all(len(a["label"]) == 2 and len(a["prob"]) == 2 and a["prob"][0] >= a["prob"][1] for a in answer)
        assert np.mean([a["label"][0] == f"__label__{label}" for a, (label, _) in
                        zip(answer, validation_pairs[:20], strict=True)]) >= 0.9
        predictions.append(payload)
    assert predictions[0] == predictions[1] == predictions[2]  # the same documents, however they came


def test_supervised_json_lines_inference_top_k_and_early_stopping(tmp_path):
    train_pairs, validation_pairs = topic_texts(600, seed=3), topic_texts(150, seed=4)
    ctx = train_direct(tmp_path, {**SUPERVISED, "early_stopping": "true", "epochs": "12", "min_epochs": "2",
                                  "patience": "2"},
                       {"train": ("text/plain", fasttext_lines(train_pairs).encode()),
                        "validation": ("text/plain", fasttext_lines(validation_pairs).encode())})
    log = ctx.log.getvalue()
    assert re.search(r"Epochs 2: validation accuracy", log)
    predictor = ALGO.load(ctx.model_dir)
    lines = "".join(json.dumps({"source": text, "k": 3}) + "\n" for _, text in validation_pairs[:4])
    payload, returned = predictor.invoke(lines.encode(), "application/jsonlines", "application/jsonlines")
    rows = [json.loads(line) for line in payload.decode().splitlines()]
    assert returned == "application/jsonlines" and len(rows) == 4
    assert list(rows[0]) == ["prob", "label"] and len(rows[0]["label"]) == 3
    assert sum(rows[0]["prob"]) == pytest.approx(1.0, abs=1e-3)
    one = json.dumps({"instances": ["key0w1 w5"]}).encode()
    for body, content_type, accept, status, fragment in (
            (one, "application/json", "application/jsonlines", 406, "request's content type"),
            (one, "text/csv", "text/csv", 415, "text/csv"),
            (b"{oops", "application/json", "application/json", 400, "not valid UTF-8 JSON"),
            (json.dumps({"instances": ["ok", 7]}).encode(), "application/json", "application/json", 400,
             "Instance 2"),
            (json.dumps({"instances": ["ok"], "configuration": {"k": 0}}).encode(), "application/json",
             "application/json", 400, '"k" must be an integer >= 1'),
            (b'{"source": "a"}\n{"text": "b"}\n', "application/jsonlines", "application/jsonlines", 400,
             "JSON Lines line 2")):
        with pytest.raises(InferenceError) as info:
            predictor.invoke(body, content_type, accept)
        assert info.value.status == status and fragment in str(info.value)


@pytest.mark.parametrize("hp, channels, fragment", [
    (SUPERVISED, {"train": ("text/plain", b"__label__a good text\nno label here\n")},
     "Channel 'train', file part-0, line 2: expected '__label__<class> <text>'"),
    (SUPERVISED, {"train": ("text/plain", b"__label__a ok\n\xff\xfe bad\n")}, "line 2: not UTF-8 text"),
    (SUPERVISED, {"train": ("application/jsonlines", b'{"source": "x", "label": 1}\n{"source": "y"\n')},
     "line 2: not valid JSON"),
    (SUPERVISED, {"train": ("application/jsonlines", b'{"source": "", "label": 1}\n')}, '"source" must be'),
    (SUPERVISED, {"train": ("application/jsonlines", b'{"source": "x", "label": null}\n')}, '"label" must be'),
    (SUPERVISED, {"train": ("text/plain", b"__label__a\n")}, "document 1: it has labels but no text"),
    ({"mode": "skipgram"}, {"train": ("application/jsonlines", b'{"source": "x", "label": 1}\n')},
     "Word2Vec modes read text/plain"),
    ({"mode": "skipgram", "min_count": "5"}, {"train": ("text/plain", b"a b c\n")}, "min_count=5"),
    ({"mode": "cbow"}, {"train": ("text/csv", b"a,b\n")}, "content type 'text/csv' is not supported"),
    (SUPERVISED, {"train": ("application/x-recordio", frame_records([b"text only"]))}, "pairs of source and label"),
])
def test_bad_training_input_fails_naming_the_line(tmp_path, hp, channels, fragment):
    with pytest.raises(DataError, match=re.escape(fragment)):
        train_direct(tmp_path, hp, channels)


@pytest.fixture(scope="module")
def rt(server):
    return server.client("sagemaker-runtime")


@pytest.mark.slow
def test_supervised_job_with_augmented_manifest_endpoint_and_word2vec_job(sm, s3, rt, bucket):
    train_pairs, validation_pairs = topic_texts(1500, seed=5), topic_texts(300, seed=6)
    manifest = "".join(json.dumps({"source": text, "label": label}) + "\n" for label, text in train_pairs)
    manifest_uri = put(s3, bucket, "bt/train.manifest", manifest)
    validation_uri = put(s3, bucket, "bt/validation/v.txt", fasttext_lines(validation_pairs))
    augmented = channel("train", manifest_uri, "application/x-recordio", data_type="AugmentedManifestFile")
    augmented["DataSource"]["S3DataSource"]["AttributeNames"] = ["source", "label"]
    augmented["RecordWrapperType"] = "RecordIO"
    desc = train(sm, bucket, BT, SUPERVISED, [augmented, channel("validation", validation_uri.rsplit("/", 1)[0] + "/",
                                                                 "text/plain")])
    assert metrics(desc)["validation:accuracy"] >= 0.95
    endpoint = deploy(sm, BT, desc)
    body = json.dumps({"instances": [text for _, text in validation_pairs[:10]], "configuration": {"k": 1}})
    payload, returned = invoke(rt, endpoint, body, "application/json", "application/json")
    answer = json.loads(payload)
    assert returned == "application/json" and len(answer) == 10 and set(answer[0]) == {"label", "prob"}
    assert model_error(rt, endpoint, body, "application/json", "text/csv")[0] == 406
    sm.delete_endpoint(EndpointName=endpoint)

    text, words = synonyms_corpus(sentences=2000)
    corpus_uri = put(s3, bucket, "bt/corpus/c.txt", text)
    desc = train(sm, bucket, BT, {"mode": "skipgram", **W2V},
                 [channel("train", corpus_uri.rsplit("/", 1)[0] + "/", "text/plain")])
    endpoint = deploy(sm, BT, desc)
    payload, _ = invoke(rt, endpoint, json.dumps({"instances": words[:2]}), "application/json", "application/json")
    assert [item["word"] for item in json.loads(payload)] == words[:2]
    sm.delete_endpoint(EndpointName=endpoint)

    bad_uri = put(s3, bucket, "bt/bad/b.txt", "__label__1 fine\nnot labelled\n")
    failed = train(sm, bucket, BT, SUPERVISED, [channel("train", bad_uri.rsplit("/", 1)[0] + "/", "text/plain")],
                   expect="Failed")
    assert "file b.txt, line 2: expected '__label__<class> <text>'" in failed["FailureReason"]

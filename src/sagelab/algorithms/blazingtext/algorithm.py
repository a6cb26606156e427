"""SageMaker's BlazingText (`blazingtext` images), trained with fastText.

BlazingText is AWS's GPU/multi-core re-implementation of fastText, and its `.bin` files are fastText's; fastText
itself (its C++ through the `fasttext-community` wheel, which builds fastText's bindings for NumPy 2 and current
Pythons) is thus the engine, rather than a re-implementation in PyTorch: the same algorithms, the same artifact
format both ways, and multi-threaded Hogwild SGD in C++. (The `fasttext-numpy2` and `fasttext-modern` wheels
were tried and rejected: both stop at random with "Encountered NaN" on small corpora, even on one thread.)

Modes:
- cbow, skipgram, batch_skipgram (Word2Vec; train channel only, one tokenized sentence per line): fastText's
  unsupervised training with negative sampling. batch_skipgram is AWS's multi-node batching of skipgram: the
  same objective, trained here as skipgram (batch_size is accepted and unused). With `subwords` the model
  also learns character n-grams of min_char..max_char characters in `buckets` hash buckets, which give
  vectors to words never seen in training; without, those words get zero vectors, as on AWS.
  Artifacts: vectors.bin (fastText's model file), vectors.txt (word2vec text format: "count dim" then one
  "word v1 ... vd" line per word), and eval.json when evaluated.
- supervised (train, optional validation): fastText's text classifier (softmax over the labels, word n-grams
  up to word_ngrams hashed into buckets). Artifact: model.bin. With early_stopping (which needs a
  validation channel), models of min_epochs, min_epochs + 1, ... epochs are trained and scored on validation
  until `patience` in a row do not improve its accuracy; the best is kept. (fastText cannot resume training,
  and its learning rate decays over the planned epochs, so each candidate is trained from the start.)

Threads: one below 1,000,000 training tokens, which makes training deterministic (fastText seeds its one thread with 0); every core above.

Metrics, in BlazingText's log format:
- `#train_accuracy: 0.98` and `#validation_accuracy: 0.97` (supervised): `validation:accuracy`, `train:accuracy`.
- `#mean_rho: 0.61` (Word2Vec with evaluation): Spearman's rho between the model's cosine similarities and
  WS-353's human scores, over the pairs whose words the model can embed: `train:mean_rho`. WS-353 does not
  ship with sagelab; it is read from gensim's packaged test data when gensim is installed, and otherwise the
  log says that no evaluation was run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import ChannelSpec, DataError, MetricDefinition, TrainingContext
from sagelab.algorithms.blazingtext import corpus
from sagelab.algorithms.blazingtext.files import EVAL_JSON, MODEL_BIN, VECTORS_BIN, VECTORS_TXT
from sagelab.algorithms.blazingtext.hyperparameters import SCHEMA, SUPERVISED_ONLY, WORD2VEC_ONLY

PARALLEL_TOKENS = 1_000_000


def metric_definitions() -> tuple[MetricDefinition, ...]:
    return (MetricDefinition("train:mean_rho", r"#mean_rho: (\S+)", "Maximize"),
            MetricDefinition("train:accuracy", r"#train_accuracy: (\S+)", "Maximize"),
            MetricDefinition("validation:accuracy", r"#validation_accuracy: (\S+)", "Maximize"))


class BlazingText:
    name = "blazingtext"
    image_repositories = ("blazingtext",)
    hyperparameters = SCHEMA
    channels = (ChannelSpec("train", required=True, content_types=corpus.CONTENT_TYPES,
                            default_content_type=corpus.TEXT),
                ChannelSpec("validation", content_types=corpus.CONTENT_TYPES, default_content_type=corpus.TEXT))
    metrics = metric_definitions()

    def train(self, ctx: TrainingContext) -> None:
        hp = SCHEMA.validate({key: value for key, value in ctx.hyperparameters.items() if value is not None})
        supervised = hp["mode"] == "supervised"
        unused = WORD2VEC_ONLY if supervised else SUPERVISED_ONLY
        ctx.print(f"mode={hp['mode']}: {', '.join(unused)} do not apply.")
        train = ctx.channels["train"]
        started = time.perf_counter()
        lines, tokens = corpus.training_text(train, supervised)
        ctx.print(f"Read {len(lines)} lines, {tokens} tokens in {time.perf_counter() - started:.3f} s.")
        work = ctx.output_dir / "blazingtext"
        work.mkdir(parents=True, exist_ok=True)
        train_file = work / "train.txt"
        train_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        threads = (os.cpu_count() or 1) if tokens >= PARALLEL_TOKENS else 1
        ctx.model_dir.mkdir(parents=True, exist_ok=True)
        if supervised:
            _Supervised(ctx, hp, threads, work).run(train_file)
        else:
            if "validation" in ctx.channels:
                ctx.print("Word2Vec modes read only the train channel: the validation channel is ignored.")
            _word2vec(ctx, hp, threads, train_file)

    def load(self, model_dir: Path) -> Any:
        from sagelab.algorithms.blazingtext.predictor import load_predictor

        return load_predictor(Path(model_dir))


def _fasttext_call(function: Any, **params: Any) -> Any:
    try:
        return function(**params)
    except (ValueError, RuntimeError) as exc:
        message = str(exc)
        if "Empty vocabulary" in message or "empty" in message.lower():
            raise DataError(f"fastText found no words to learn: every word occurs fewer than min_count="
                            f"{params.get('minCount')} times ({message.strip()}).") from None
        raise DataError(f"fastText could not train: {message.strip()}") from None


def _word2vec(ctx: TrainingContext, hp: dict[str, Any], threads: int, train_file: Path) -> None:
    import fasttext

    subwords = hp["subwords"]
    started = time.perf_counter()
    model = _fasttext_call(
        fasttext.train_unsupervised, input=str(train_file), model="cbow" if hp["mode"] == "cbow" else "skipgram",
        lr=hp["learning_rate"], dim=hp["vector_dim"], ws=hp["window_size"], epoch=hp["epochs"],
        minCount=hp["min_count"], neg=hp["negative_samples"], t=hp["sampling_threshold"],
        minn=hp["min_char"] if subwords else 0, maxn=hp["max_char"] if subwords else 0,
        bucket=hp["buckets"] if subwords else 0, thread=threads, verbose=0)
    words = model.words
    ctx.print(f"Trained {hp['mode']} on {threads} thread(s) in {time.perf_counter() - started:.3f} s: "
              f"{len(words)} words of {hp['vector_dim']} dimensions"
              + (f", subwords of {hp['min_char']}-{hp['max_char']} characters." if subwords else "."))
    model.save_model(str(ctx.model_dir / VECTORS_BIN))
    with (ctx.model_dir / VECTORS_TXT).open("w", encoding="utf-8") as out:
        out.write(f"{len(words)} {hp['vector_dim']}\n")
        for word in words:
            out.write(word + " " + " ".join(f"{v:.6g}" for v in model.get_word_vector(word).tolist()) + "\n")
    if hp["evaluation"]:
        _evaluate(ctx, model, subwords)


def ws353_path() -> Path | None:
    """WS-353 as gensim packages it (gensim/test/test_data/wordsim353.tsv), without importing gensim."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "test" / "test_data" / "wordsim353.tsv"
        if path.is_file():
            return path
    return None


def word_similarity_rho(model: Any, pairs: list[tuple[str, str, float]], subwords: bool) -> tuple[float, int]:
    """(Spearman's rho of the model's cosine similarities against the human scores, pairs scored)."""
    from scipy.stats import spearmanr

    known = set(model.words)
    ours, theirs = [], []
    for a, b, score in pairs:
        if not subwords and (a not in known or b not in known):
            continue
        va, vb = model.get_word_vector(a), model.get_word_vector(b)
        norm = float(np.linalg.norm(va) * np.linalg.norm(vb))
        if norm == 0:
            continue
        ours.append(float(va @ vb) / norm)
        theirs.append(score)
    if len(ours) < 3:
        return float("nan"), len(ours)
    return float(spearmanr(ours, theirs).statistic), len(ours)


def _evaluate(ctx: TrainingContext, model: Any, subwords: bool) -> None:
    path = ws353_path()
    if path is None:
        ctx.print("Evaluation: WS-353 does not ship with sagelab (gensim, which packages it, is not installed): "
                  "no mean_rho.")
        return
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and not line.startswith("#"):
            try:
                pairs.append((parts[0].lower(), parts[1].lower(), float(parts[2])))
            except ValueError:
                continue
    rho, scored = word_similarity_rho(model, pairs, subwords)
    report = {"EN-WS-353-ALL.txt": {"spearmans_rho": rho if np.isfinite(rho) else None,
                                    "total_pairs": len(pairs), "not_found": len(pairs) - scored}}
    if not np.isfinite(rho):
        ctx.print(f"Evaluation: only {scored} of WS-353's {len(pairs)} pairs are in the vocabulary: no mean_rho.")
    else:
        report["mean_rho"] = rho
        ctx.print(f"Evaluation on WS-353: {scored} of {len(pairs)} pairs scored.")
        ctx.print(f"#mean_rho: {rho!r}")
    (ctx.model_dir / EVAL_JSON).write_text(json.dumps(report, indent=2, sort_keys=True))


class _Supervised:
    def __init__(self, ctx: TrainingContext, hp: dict[str, Any], threads: int, work: Path):
        self.ctx, self.hp, self.threads, self.work = ctx, hp, threads, work

    def fit(self, train_file: Path, epochs: int) -> Any:
        import fasttext

        hp = self.hp
        return _fasttext_call(fasttext.train_supervised, input=str(train_file), lr=hp["learning_rate"],
                              dim=hp["vector_dim"], epoch=epochs, minCount=hp["min_count"],
                              wordNgrams=hp["word_ngrams"], bucket=hp["buckets"], loss="softmax",
                              thread=self.threads, verbose=0)

    def run(self, train_file: Path) -> None:
        ctx, hp = self.ctx, self.hp
        validation_file = None
        if "validation" in ctx.channels:
            lines, _ = corpus.training_text(ctx.channels["validation"], True)
            validation_file = self.work / "validation.txt"
            validation_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        started = time.perf_counter()
        if hp["early_stopping"] and validation_file is None:
            ctx.print("early_stopping needs a validation channel: training for all epochs.")
        if hp["early_stopping"] and validation_file is not None:
            model, epochs = self.early_stopped(train_file, validation_file)
        else:
            model, epochs = self.fit(train_file, hp["epochs"]), hp["epochs"]
        ctx.print(f"Trained a classifier of {len(model.labels)} labels over {len(model.words)} words for {epochs} "
                  f"epochs on {self.threads} thread(s) in {time.perf_counter() - started:.3f} s.")
        samples, accuracy, _ = model.test(str(train_file))
        ctx.print(f"#train_accuracy: {accuracy!r}")
        ctx.print(f"Number of train examples: {samples}")
        if validation_file is not None:
            samples, accuracy, _ = model.test(str(validation_file))
            ctx.print(f"#validation_accuracy: {accuracy!r}")
            ctx.print(f"Number of validation examples: {samples}")
        model.save_model(str(ctx.model_dir / MODEL_BIN))

    def early_stopped(self, train_file: Path, validation_file: Path) -> tuple[Any, int]:
        hp, ctx = self.hp, self.ctx
        best: tuple[float, Any, int] | None = None
        waited = 0
        for epochs in range(hp["min_epochs"], hp["epochs"] + 1):
            model = self.fit(train_file, epochs)
            accuracy = model.test(str(validation_file))[1]
            ctx.print(f"Epochs {epochs}: validation accuracy {accuracy:.6f}")
            if best is None or accuracy > best[0]:
                best, waited = (accuracy, model, epochs), 0
            else:
                waited += 1
                if waited >= hp["patience"]:
                    ctx.print(f"Early stopping: no better validation accuracy than {best[0]:.6f} ({best[2]} epochs) "
                              f"in {waited} more.")
                    break
        assert best is not None
        return best[1], best[2]

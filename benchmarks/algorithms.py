"""Built-in algorithm overhead: every built-in in JOBS below, each trained as a sagelab training job
and, in the same run, by calling the underlying library directly on the same CSV file with the same
hyperparameters. Prints each ratio job/direct, the worst last (target <= 1.3).

Run: .venv/bin/python benchmarks/algorithms.py [--scale 1.0] [--repeats 3] [--only kmeans,pca]

The job time runs from the job's CreationTime to its TrainingEndTime, as DescribeTrainingJob reports them: job
process start, channel download, CSV parsing, training, artifact upload and metric extraction. (The status is
polled every 250 ms: on two cores, polling every few milliseconds would steal the job's CPU.) The direct
time reads the CSV with pyarrow and calls scikit-learn in a new Python process, as a user's script would (its
imports happen before the clock starts, as a job's happen in the forkserver); both sides thus pay for a fresh
process touching its memory for the first time:
- K-Means: MiniBatchKMeans.partial_fit over mini-batches (K = 10k centres, as extra_center_factor=auto), then
  ten KMeans runs on the weighted centres;
- PCA: PCA(svd_solver="covariance_eigh"), what algorithm_mode=regular uses when records outnumber features;
- k-NN: a uniform sample of sample_size records, KNeighborsClassifier fit and predict on the test channel;
- LDA: scikit-learn's LatentDirichletAllocation (batch variational Bayes, every core at 10,000 documents and
  more, as the algorithm runs it);
- BlazingText: fastText's train_unsupervised (skipgram, every core) and save_model on the same corpus; the job
  also writes vectors.txt, which the direct run does not;
- Linear Learner, NTM, DeepAR, Object2Vec, Seq2Seq and the image algorithms: their engines are sagelab's own
  (NumPy SGD; PyTorch networks), so their direct runs call the algorithm in that process on the same files (no
  server, no job process). NTM trains on LDA's corpus; the image algorithms train narrow networks on 32 x 32 images of
  planted shapes (object detection through its sagelab-only small-network keys; semantic segmentation on JPEG
  scenes with PNG masks in four channel folders);
  torch is imported inside the clock on both sides (the job forkserver does not preload it).
Timings taken while other work shares the cores are noisy: the ratio printed is best job / best direct (the
least disturbed run of each), with the ratio of medians beside it.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from sagelab.embedded import ServerProcess

KMEANS = {"k": 20, "feature_dim": 20, "mini_batch_size": 5000, "epochs": 10}
PCA_HP = {"num_components": 20, "feature_dim": 200, "mini_batch_size": 500}
KNN = {"k": 10, "feature_dim": 10, "predictor_type": "classifier", "sample_size": 50_000}
KNN_TEST_ROWS = 20_000
LINEAR = {"predictor_type": "binary_classifier", "epochs": 15, "num_models": 2, "mini_batch_size": 1000}
NTM_HP = {"num_topics": 20, "feature_dim": 400, "epochs": 10, "mini_batch_size": 256, "optimizer": "adam",
          "learning_rate": 0.01}
BLAZINGTEXT = {"mode": "skipgram", "vector_dim": 100, "epochs": 5, "min_count": 5, "evaluation": "false"}
DEEPAR_HP = {"context_length": 48, "prediction_length": 24, "time_freq": "H", "epochs": 5, "mini_batch_size": 64,
             "likelihood": "gaussian"}
OBJECT_DETECTION_HP = {"num_classes": 2, "num_training_samples": 500, "use_pretrained_model": 0, "image_shape": 32,
                       "_sagelab_small_images": "true", "_sagelab_base_width": 8, "epochs": 5, "optimizer": "adam",
                       "learning_rate": 0.002, "mini_batch_size": 16}
IMAGE_CLASSIFICATION_HP = {"num_classes": 3, "num_training_samples": 400, "num_layers": 20, "image_shape": "3,32,32",
                           "epochs": 3, "mini_batch_size": 32, "learning_rate": 0.05}
SEQ2SEQ_HP = {"rnn_num_hidden": 64, "num_embed_source": 32, "num_embed_target": 32, "batch_size": 64,
              "learning_rate": 0.01, "checkpoint_frequency_num_batches": 100, "max_num_batches": 300,
              "bleu_sample_size": 50, "beam_size": 3}
SEQ2SEQ_WORDS = 30
PROTOBUF = "application/x-recordio-protobuf"
LDA_HP = {"num_topics": 20, "feature_dim": 400, "mini_batch_size": 20_000, "max_iterations": 30}
OBJECT2VEC_VOCAB = 200
OBJECT2VEC_HP = {"enc0_max_seq_len": 10, "enc0_vocab_size": OBJECT2VEC_VOCAB, "enc_dim": 32,
                 "enc0_token_embedding_dim": 16, "enc0_network": "pooled_embedding", "num_classes": 2, "epochs": 5,
                 "mini_batch_size": 64}
SEMSEG_IMAGES, SEMSEG_SIZE = 64, 64
SEMSEG_HP = {"num_classes": 2, "num_training_samples": SEMSEG_IMAGES, "use_pretrained_model": "False",
             "_sagelab_base_width": 8, "crop_size": SEMSEG_SIZE, "base_size": SEMSEG_SIZE, "epochs": 3,
             "mini_batch_size": 8, "optimizer": "adam", "learning_rate": 0.01}
SEMSEG_CHANNELS = [("train", "semantic-segmentation/train", "image/jpeg"),
                   ("train_annotation", "semantic-segmentation/train_annotation", "image/png"),
                   ("validation", "semantic-segmentation/validation", "image/jpeg"),
                   ("validation_annotation", "semantic-segmentation/validation_annotation", "image/png")]


# -- data -----------------------------------------------------------------------------------------------------


def write_csv(path: Path, rows: np.ndarray) -> None:
    table = pa.table({f"c{i}": rows[:, i].astype(np.float32) for i in range(rows.shape[1])})
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(include_header=False))


def read_csv(path: Path) -> np.ndarray:
    table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(autogenerate_column_names=True))
    return np.column_stack([c.to_numpy().astype(np.float32) for c in table.columns])


def blobs(rows: int, features: int, centres: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=4.0, size=(centres, features))
    labels = rng.integers(0, centres, size=rows)
    return means[labels] + rng.normal(size=(rows, features)), labels.astype(np.float64)


def classified_shapes_recordio(count: int, seed: int) -> bytes:
    """A .rec file of 32x32 PNGs: a circle, square or triangle (the label) of random size, place and colour."""
    from PIL import Image, ImageDraw

    from sagelab.algorithms.vision.records import write_recordio

    rng = np.random.default_rng(seed)
    items = []
    for label in rng.integers(0, 3, count).tolist():
        picture = Image.new("RGB", (32, 32), tuple(int(v) for v in rng.integers(0, 90, 3)))
        side = int(rng.integers(10, 22))
        x, y = (int(v) for v in rng.integers(0, 32 - side, 2))
        fill = tuple(int(v) for v in rng.integers(150, 256, 3))
        pen = ImageDraw.Draw(picture)
        if label == 0:
            pen.ellipse([x, y, x + side, y + side], fill=fill)
        elif label == 1:
            pen.rectangle([x, y, x + side, y + side], fill=fill)
        else:
            pen.polygon([(x, y + side), (x + side, y + side), (x + side / 2, y)], fill=fill)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        items.append((label, buffer.getvalue()))
    return write_recordio(items)


def make_data(folder: Path, scale: float) -> dict[str, Path]:
    files = {}
    x, _ = blobs(int(600_000 * scale), KMEANS["feature_dim"], 25, seed=1)
    files["kmeans/train"] = folder / "kmeans.csv"
    write_csv(files["kmeans/train"], x)
    rng = np.random.default_rng(2)
    low_rank = rng.normal(size=(int(200_000 * scale), 30)) @ rng.normal(size=(30, PCA_HP["feature_dim"]))
    files["pca/train"] = folder / "pca.csv"
    write_csv(files["pca/train"], low_rank + 0.1 * rng.normal(size=low_rank.shape))
    test = KNN_TEST_ROWS
    x, y = blobs(int(100_000 * scale) + test, KNN["feature_dim"], 6, seed=3)
    x += np.random.default_rng(4).normal(scale=3.0, size=x.shape)  # overlapping classes: a real vote
    files["knn/train"], files["knn/test"] = folder / "knn-train.csv", folder / "knn-test.csv"
    write_csv(files["knn/train"], np.column_stack([y[test:], x[test:]]))
    write_csv(files["knn/test"], np.column_stack([y[:test], x[:test]]))
    rng = np.random.default_rng(5)
    x = rng.normal(size=(int(500_000 * scale), 20))
    y = (x[:, :5] @ rng.normal(size=5) + rng.normal(scale=0.5, size=len(x)) > 0).astype(np.float64)
    files["linear-learner/train"] = folder / "linear.csv"
    write_csv(files["linear-learner/train"], np.column_stack([y, x]))
    rng = np.random.default_rng(6)
    topics = rng.dirichlet(np.full(LDA_HP["feature_dim"], 0.05), size=LDA_HP["num_topics"])
    mixtures = rng.dirichlet(np.full(LDA_HP["num_topics"], 0.2), size=int(LDA_HP["mini_batch_size"] * scale))
    words = np.array([f"w{i}" for i in range(20_000)])
    zipf = 1.0 / np.arange(1, len(words) + 1)
    tokens = rng.choice(words, size=(int(300_000 * scale), 8), p=zipf / zipf.sum())
    files["blazingtext/train"] = folder / "corpus.txt"
    files["blazingtext/train"].write_text("\n".join(" ".join(row) for row in tokens) + "\n")
    t = np.arange(1000)
    series = [{"start": "2024-01-01 00:00:00", "target": (10 + 5 * np.sin(2 * np.pi * t / 24 + p)
                                                          + rng.normal(size=len(t))).round(3).tolist()}
              for p in rng.uniform(0, 2 * np.pi, size=int(100 * scale))]
    files["forecasting-deepar/train"] = folder / "series.json"
    files["forecasting-deepar/train"].write_text("".join(json.dumps(s) + "\n" for s in series))
    # Object2Vec pairs: label 1 when both sequences draw their tokens from the same half of the vocabulary.
    halves = rng.integers(0, 2, size=(int(20_000 * scale), 2))
    low = OBJECT2VEC_VOCAB // 2
    pairs = [{"label": int(a == b), "in0": rng.integers(a * low, a * low + low, size=8).tolist(),
              "in1": rng.integers(b * low, b * low + low, size=8).tolist()} for a, b in halves]
    files["object2vec/train"] = folder / "pairs.jsonl"
    files["object2vec/train"].write_text("".join(json.dumps(pair) + "\n" for pair in pairs))
    files["image-classification/train"] = folder / "shapes.rec"
    files["image-classification/train"].write_bytes(classified_shapes_recordio(
        int(IMAGE_CLASSIFICATION_HP["num_training_samples"] * scale), seed=7))
    files.update(seq2seq_data(folder, int(5000 * scale)))
    files["lda/train"] = folder / "lda.csv"
    write_csv(files["lda/train"], np.stack([rng.multinomial(100, m @ topics) for m in mixtures]))
    for name, count in (("train", int(500 * scale)), ("validation", max(int(100 * scale), 10))):
        files[f"object-detection/{name}"] = folder / f"shapes-{name}.rec"
        files[f"object-detection/{name}"].write_bytes(boxed_shapes_recordio(count, rng))
    files.update(segmentation_scenes(folder, max(int(SEMSEG_IMAGES * scale), 8)))
    return files


def boxed_shapes_recordio(count: int, rng: np.random.Generator, size: int = 32) -> bytes:
    """A .rec file of `count` images, each with a red square (class 0) or a blue disc (class 1) somewhere."""
    from PIL import Image, ImageDraw

    from sagelab.algorithms.vision.records import write_recordio

    items = []
    for _ in range(count):
        picture = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(0, 90, 3)))
        c = int(rng.integers(2))
        w, h = rng.uniform(0.3, 0.6, 2) * size
        x0, y0 = rng.uniform(0, size - w), rng.uniform(0, size - h)
        (ImageDraw.Draw(picture).rectangle if c == 0 else ImageDraw.Draw(picture).ellipse)(
            [x0, y0, x0 + w, y0 + h], fill=((230, 40, 40), (40, 90, 230))[c])
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        items.append(([2, 5, c, x0 / size, y0 / size, (x0 + w) / size, (y0 + h) / size], buffer.getvalue()))
    return write_recordio(items)


def segmentation_scenes(folder: Path, images: int) -> dict[str, Path]:
    """Folders of JPEG scenes (a red disc on noise) and their PNG masks, for the four channels."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(7)
    out = {}
    for split, count in (("train", images), ("validation", max(images // 4, 1))):
        pictures, masks = folder / "semseg" / split, folder / "semseg" / f"{split}_annotation"
        pictures.mkdir(parents=True)
        masks.mkdir(parents=True)
        for i in range(count):
            size = SEMSEG_SIZE
            picture = Image.fromarray(rng.integers(60, 140, size=(size, size, 3)).astype(np.uint8))
            mask = Image.new("L", (size, size), 0)
            r = int(rng.integers(size // 6, size // 4))
            cx, cy = (int(v) for v in rng.integers(r, size - r, size=2))
            ImageDraw.Draw(picture).ellipse((cx - r, cy - r, cx + r, cy + r), fill=(220, 40, 40))
            ImageDraw.Draw(mask).ellipse((cx - r, cy - r, cx + r, cy + r), fill=1)
            picture.save(pictures / f"img{i:04d}.jpg", quality=90)
            mask.save(masks / f"img{i:04d}.png")
        out[f"semantic-segmentation/{split}"] = pictures
        out[f"semantic-segmentation/{split}_annotation"] = masks
    return out


def seq2seq_data(folder: Path, sentences: int) -> dict[str, Path]:
    """A planted translation (each source word has one target word; the target is the reversed translation) as
    SageMaker's create_vocab_proto.py writes it: train.rec, val.rec, vocab.src.json, vocab.trg.json. The keys
    after '#' share one S3 prefix (the vocab channel holds both vocabularies)."""
    from sagelab.algorithms.seq2seq.data import write_pairs

    rng = np.random.default_rng(7)
    dictionary = rng.permutation(SEQ2SEQ_WORDS)
    specials = ["<pad>", "<unk>", "<s>", "</s>"]
    out = {}
    for side, prefix in (("src", "s"), ("trg", "t")):
        vocab = {word: i for i, word in enumerate(specials + [f"{prefix}{w}" for w in range(SEQ2SEQ_WORDS)])}
        out[f"seq2seq/vocab#{side}"] = folder / f"vocab.{side}.json"
        out[f"seq2seq/vocab#{side}"].write_text(json.dumps(vocab, indent=4))
    for name, file, count in (("train", "train.rec", sentences), ("validation", "val.rec", max(sentences // 10, 50))):
        sources = [rng.integers(SEQ2SEQ_WORDS, size=int(rng.integers(4, 12))) for _ in range(count)]
        targets = [dictionary[s[::-1]] + len(specials) for s in sources]
        out[f"seq2seq/{name}"] = folder / file
        out[f"seq2seq/{name}"].write_bytes(write_pairs([(s + len(specials)).tolist() for s in sources],
                                                       [t.tolist() for t in targets]))
    return out


# -- direct library calls ------------------------------------------------------------------------------------------


def kmeans_direct(files: dict[str, Path]) -> None:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    x = read_csv(files["kmeans/train"])
    k, batch = KMEANS["k"], KMEANS["mini_batch_size"]
    model = MiniBatchKMeans(n_clusters=10 * k, init="random", batch_size=batch, n_init=1, random_state=0,
                            reassignment_ratio=0.0, compute_labels=False, max_no_improvement=None, tol=0.0)
    for _ in range(KMEANS["epochs"]):
        for start in range(0, len(x), batch):
            model.partial_fit(x[start:start + batch])
    counts = np.bincount(model.predict(x), minlength=10 * k).astype(np.float64)
    used = counts > 0
    seeds = np.random.default_rng(0).integers(0, 2**31 - 1, size=10)
    min((KMeans(n_clusters=k, n_init=1, max_iter=300, tol=1e-4, random_state=int(s))
         .fit(model.cluster_centers_[used], sample_weight=counts[used]) for s in seeds), key=lambda m: m.inertia_)


def pca_direct(files: dict[str, Path]) -> None:
    from sklearn.decomposition import PCA

    PCA(n_components=PCA_HP["num_components"], svd_solver="covariance_eigh").fit(read_csv(files["pca/train"]))


def knn_direct(files: dict[str, Path]) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    train, test = read_csv(files["knn/train"]), read_csv(files["knn/test"])
    size = KNN["sample_size"]
    if len(train) > size:
        train = train[np.sort(np.random.default_rng(0).choice(len(train), size=size, replace=False))]
    model = KNeighborsClassifier(n_neighbors=KNN["k"]).fit(train[:, 1:], train[:, 0])
    float(np.mean(model.predict(test[:, 1:]) == test[:, 0]))


def channel_files(path: Path | list[Path]) -> list[Path]:
    """A channel's files: a list as given, a folder's files, or the one file."""
    if not isinstance(path, Path):
        return list(path)
    return sorted(path.iterdir()) if path.is_dir() else [path]


def in_process(algorithm, hyperparameters: dict, channels: dict[str, tuple[Path | list[Path], str]]) -> None:
    """Train `algorithm` in this process on the same files (no server, no job process)."""
    from sagelab.algorithms.base import Channel, TrainingContext

    with tempfile.TemporaryDirectory() as tmp:
        made = {name: Channel(name, content_type, channel_files(path))
                for name, (path, content_type) in channels.items()}
        hp = algorithm.hyperparameters.validate({k: str(v) for k, v in hyperparameters.items()})
        algorithm.train(TrainingContext(hp, made, Path(tmp) / "model", Path(tmp) / "out", io.StringIO()))


def linear_direct(files: dict[str, Path]) -> None:
    from sagelab.algorithms.linear_learner.algorithm import LinearLearner

    in_process(LinearLearner(), LINEAR, {"train": (files["linear-learner/train"], "text/csv")})


def blazingtext_direct(files: dict[str, Path]) -> None:
    # fastText itself on the same file, with the threads the algorithm gives it (every core from 1M tokens).
    import os

    import fasttext

    hp = BLAZINGTEXT
    with tempfile.TemporaryDirectory() as tmp:
        model = fasttext.train_unsupervised(str(files["blazingtext/train"]), model="skipgram", lr=0.05,
                                            dim=hp["vector_dim"], ws=5, epoch=hp["epochs"], minCount=hp["min_count"],
                                            neg=5, t=1e-4, minn=0, maxn=0, bucket=0, thread=os.cpu_count() or 1,
                                            verbose=0)
        model.save_model(str(Path(tmp) / "vectors.bin"))


def deepar_direct(files: dict[str, Path]) -> None:
    # DeepAR's engine is sagelab's own PyTorch network, called in this process (torch imported inside the clock).
    from sagelab.algorithms.deepar.algorithm import DeepAR

    in_process(DeepAR(), DEEPAR_HP, {"train": (files["forecasting-deepar/train"], "application/jsonlines")})


def object_detection_direct(files: dict[str, Path]) -> None:
    # Object Detection's engine is sagelab's own PyTorch SSD, called in this process (torch imported inside the clock).
    from sagelab.algorithms.object_detection.algorithm import ObjectDetection

    in_process(ObjectDetection(), OBJECT_DETECTION_HP,
               {name: (files[f"object-detection/{name}"], "application/x-recordio") for name in ("train", "validation")})


def semseg_direct(files: dict[str, Path]) -> None:
    # Semantic Segmentation's engine is sagelab's own PyTorch network, called in this process on the same folders.
    from sagelab.algorithms.semantic_segmentation.algorithm import SemanticSegmentation

    in_process(SemanticSegmentation(), SEMSEG_HP, {name: (files[key], ct) for name, key, ct in SEMSEG_CHANNELS})


def image_classification_direct(files: dict[str, Path]) -> None:
    # The engine is sagelab's own PyTorch ResNet, called in this process (torch imported inside the clock).
    from sagelab.algorithms.image_classification.algorithm import ImageClassification

    in_process(ImageClassification(), IMAGE_CLASSIFICATION_HP,
               {"train": (files["image-classification/train"], "application/x-recordio")})


def seq2seq_direct(files: dict[str, Path]) -> None:
    # Seq2Seq's engine is sagelab's own PyTorch network (BLEU by sacrebleu), called in this process.
    from sagelab.algorithms.seq2seq.algorithm import Seq2Seq

    in_process(Seq2Seq(), SEQ2SEQ_HP, {"train": (files["seq2seq/train"], PROTOBUF),
                                       "validation": (files["seq2seq/validation"], PROTOBUF),
                                       "vocab": ([files["seq2seq/vocab#src"], files["seq2seq/vocab#trg"]],
                                                 "application/json")})


def ntm_direct(files: dict[str, Path]) -> None:
    # NTM's engine is sagelab's own PyTorch network. torch is imported inside the clock on both sides: the job
    # forkserver does not preload it either.
    from sagelab.algorithms.ntm.algorithm import NTMAlgorithm

    in_process(NTMAlgorithm(), NTM_HP, {"train": (files["lda/train"], "text/csv;label_size=0")})


def object2vec_direct(files: dict[str, Path]) -> None:
    # Object2Vec's engine is sagelab's own PyTorch network, called in this process (torch imported inside the clock).
    from sagelab.algorithms.object2vec.algorithm import Object2Vec

    in_process(Object2Vec(), OBJECT2VEC_HP, {"train": (files["object2vec/train"], "application/jsonlines")})


def lda_direct(files: dict[str, Path]) -> None:
    import os

    from sklearn.decomposition import LatentDirichletAllocation

    x = read_csv(files["lda/train"])
    k = LDA_HP["num_topics"]
    jobs = (os.cpu_count() or 1) if len(x) >= 10_000 else 1
    LatentDirichletAllocation(n_components=k, doc_topic_prior=1.0 / k, topic_word_prior=1.0 / k,
                              learning_method="batch", random_state=0, max_iter=LDA_HP["max_iterations"],
                              evaluate_every=10, perp_tol=0.1, n_jobs=jobs).fit(x)


# -- jobs ------------------------------------------------------------------------------------------------------------


def channel(name: str, bucket: str, prefix: str, content_type: str) -> dict:
    return {"ChannelName": name, "ContentType": content_type,
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/{prefix}/"}}}


JOBS: dict[str, tuple[dict, list[tuple[str, str, str]], Callable[[dict[str, Path]], None]]] = {
    "kmeans": (KMEANS, [("train", "kmeans/train", "text/csv;label_size=0")], kmeans_direct),
    "pca": (PCA_HP, [("train", "pca/train", "text/csv;label_size=0")], pca_direct),
    "knn": (KNN, [("train", "knn/train", "text/csv"), ("test", "knn/test", "text/csv")], knn_direct),
    "linear-learner": (LINEAR, [("train", "linear-learner/train", "text/csv")], linear_direct),
    "lda": (LDA_HP, [("train", "lda/train", "text/csv;label_size=0")], lda_direct),
    "blazingtext": (BLAZINGTEXT, [("train", "blazingtext/train", "text/plain")], blazingtext_direct),
    "forecasting-deepar": (DEEPAR_HP, [("train", "forecasting-deepar/train", "application/jsonlines")],
                           deepar_direct),
    "ntm": (NTM_HP, [("train", "lda/train", "text/csv;label_size=0")], ntm_direct),
    "object2vec": (OBJECT2VEC_HP, [("train", "object2vec/train", "application/jsonlines")], object2vec_direct),
    "object-detection": (OBJECT_DETECTION_HP,
                         [(name, f"object-detection/{name}", "application/x-recordio") for name in ("train", "validation")],
                         object_detection_direct),
    "semantic-segmentation": (SEMSEG_HP, SEMSEG_CHANNELS, semseg_direct),
    "image-classification": (IMAGE_CLASSIFICATION_HP,
                             [("train", "image-classification/train", "application/x-recordio")],
                             image_classification_direct),
    "seq2seq": (SEQ2SEQ_HP, [("train", "seq2seq/train", PROTOBUF), ("validation", "seq2seq/validation", PROTOBUF),
                             ("vocab", "seq2seq/vocab", "application/json")], seq2seq_direct),
}


def job(sm, bucket: str, name: str, algorithm: str, poll: float = 0.25) -> float:
    hyperparameters, channels, _ = JOBS[algorithm]
    started = time.perf_counter()
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": f"382416733822.dkr.ecr.us-east-1.amazonaws.com/{algorithm}:1",
                                "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::000000000000:role/bench",
        HyperParameters={k: str(v) for k, v in hyperparameters.items()},
        InputDataConfig=[channel(n, bucket, prefix, ct) for n, prefix, ct in channels],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/out"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 3600})
    while True:
        desc = sm.describe_training_job(TrainingJobName=name)
        if desc["TrainingJobStatus"] != "InProgress":
            break
        # Polling slowly keeps the server and botocore off the two cores the job trains on; the job's duration
        # comes from the server's own timestamps, not from when this loop noticed.
        time.sleep(poll)
    polled = time.perf_counter() - started
    if desc["TrainingJobStatus"] != "Completed":
        raise SystemExit(f"job {name} ended {desc['TrainingJobStatus']}: {desc.get('FailureReason')}")
    elapsed = (desc["TrainingEndTime"] - desc["CreationTime"]).total_seconds()
    phases = {t["Status"]: t for t in desc["SecondaryStatusTransitions"]}
    spans = [(s, (phases[s]["EndTime"] - phases[s]["StartTime"]).total_seconds())
             for s in ("Starting", "Downloading", "Training", "Uploading") if s in phases]
    print("    phases: " + ", ".join(f"{s} {seconds:.3f} s" for s, seconds in spans)
          + f"; CreationTime -> TrainingEndTime {elapsed:.3f} s (noticed after {polled:.2f} s)")
    return elapsed


def direct_in_fresh_process(algorithm: str, files: dict[str, Path]) -> float:
    """Seconds the direct call takes in a new Python process (imports done before the clock starts), as a user's
    script would run it, and as a job runs in a new process."""
    done = subprocess.run([sys.executable, __file__, "--direct-child", algorithm, "--files",
                           json.dumps({key: str(path) for key, path in files.items()})],
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def direct_child(algorithm: str, files: dict[str, Path]) -> None:
    # This folder's profile.py would shadow the standard library's, which torch imports (through cProfile).
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    import sklearn.cluster  # noqa: F401 - imported before timing, as the job forkserver preloads them
    import sklearn.decomposition  # noqa: F401
    import sklearn.neighbors  # noqa: F401

    import sagelab.algorithms.linear_learner.algorithm  # noqa: F401

    started = time.perf_counter()
    JOBS[algorithm][2](files)
    print(time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every data set's number of rows")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default=",".join(JOBS), help="comma-separated algorithms")
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between DescribeTrainingJob calls")
    parser.add_argument("--direct-child", help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.direct_child:
        direct_child(args.direct_child, {key: Path(path) for key, path in json.loads(args.files).items()})
        return
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    ratios: dict[str, float] = {}
    medians: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = make_data(Path(tmp), args.scale)
        for key, path in files.items():
            size = sum(p.stat().st_size for p in path.iterdir()) if path.is_dir() else path.stat().st_size
            print(f"data {key}: {size / 1e6:.1f} MB")
        with ServerProcess(Path(tmp) / "home") as server:
            s3, sm = server.client("s3"), server.client("sagemaker")
            s3.create_bucket(Bucket="bench")
            for key, path in files.items():
                for item in sorted(path.iterdir()) if path.is_dir() else [path]:
                    s3.upload_file(str(item), "bench", f"{key.split('#')[0]}/{item.name}")
            for algorithm in chosen:
                print(f"{algorithm}:")
                job(sm, "bench", f"warmup-{algorithm}", algorithm)  # starts the job forkserver, warms caches
                direct_in_fresh_process(algorithm, files)
                jobs, directs = [], []
                for i in range(args.repeats):
                    j = job(sm, "bench", f"{algorithm}-{i}", algorithm, args.poll)
                    d = direct_in_fresh_process(algorithm, files)
                    jobs.append(j)
                    directs.append(d)
                    print(f"  run {i + 1}: job {j:.2f} s   direct {d:.2f} s   ratio {j / d:.3f}")
                ratios[algorithm] = min(jobs) / min(directs)
                medians[algorithm] = statistics.median(jobs) / statistics.median(directs)
                print(f"  {algorithm}: best job {min(jobs):.2f} s, best direct {min(directs):.2f} s, ratio "
                      f"{ratios[algorithm]:.3f} (medians {statistics.median(jobs):.2f} s / "
                      f"{statistics.median(directs):.2f} s = {medians[algorithm]:.3f})")
    print()
    for algorithm, ratio in ratios.items():
        print(f"ratio job/direct {algorithm:15s} {ratio:.3f}   (of medians {medians[algorithm]:.3f})")
    worst = max(ratios, key=ratios.__getitem__)
    print(f"worst ratio job/direct: {worst} {ratios[worst]:.3f}  (target <= 1.3)")


if __name__ == "__main__":
    main()

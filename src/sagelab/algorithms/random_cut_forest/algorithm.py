"""SageMaker's Random Cut Forest (`randomcutforest` images): unsupervised anomaly scores from a forest of random
cut trees (see `random_cut_forest.model` for the algorithm and how its score scale compares with AWS's).

Channels (DG `randomcutforest`): `train` (required; recordIO-protobuf by default, or text/csv, which has no
label unless the content type says `label_size=1`) and `test` (optional, labelled: `text/csv;label_size=1` with
1 = anomaly, or protobuf with label["values"]). With a test channel, points scoring above mean + 3 standard
deviations of the test scores are called anomalous (DG `random-cut-forest-tuning`) and, per `eval_metrics`,
accuracy and/or precision, recall and F1 are logged:
    #test_score (algo-1) : ('f1', 0.8)
    #quality_metric: host=algo-1, test f1 <score>=0.8
`test:f1` is the documented tuning metric; `test:accuracy`, `test:precision` and `test:recall` read the same
kind of line (their AWS log format is unverified). The forest uses a fixed seed, so training is deterministic.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from sagelab.algorithms import quality_metrics as qm
from sagelab.algorithms.base import ChannelSpec, DataError, TrainingContext
from sagelab.algorithms.first_party import io as onep_io
from sagelab.algorithms.random_cut_forest.hyperparameters import SCHEMA
from sagelab.algorithms.random_cut_forest.model import Forest
from sagelab.algorithms.random_cut_forest.predictor import RCFPredictor
from sagelab.evaluation import metrics as model_quality

SEED = 20160619


def _metric_definitions() -> tuple:
    return qm.progress_definitions() + tuple(
        qm.definition("test", name, name, "score", "Maximize") for name in ("f1", "accuracy", "precision", "recall"))


def evaluate(scores: np.ndarray, labels: np.ndarray, wanted: list[str]) -> dict[str, tuple[float, str]]:
    """The three-sigma rule on the test scores, compared with the labels (1 = anomaly)."""
    threshold = float(scores.mean() + 3.0 * scores.std())
    predicted = scores > threshold
    actual = labels == 1
    values: dict[str, tuple[float, str]] = {}
    at_threshold = model_quality.threshold_metrics(actual, predicted)
    if "accuracy" in wanted:
        values["accuracy"] = (at_threshold["accuracy"], "score")
    if "precision_recall_fscore" in wanted:
        values.update({name: (at_threshold[name] or 0.0, "score") for name in ("precision", "recall", "f1")})
    return values


class RandomCutForest:
    name = "randomcutforest"
    image_repositories = ("randomcutforest",)
    hyperparameters = SCHEMA
    channels = (ChannelSpec("train", required=True, content_types=onep_io.TRAINING_CONTENT_TYPES,
                            default_content_type=onep_io.PROTOBUF),
                ChannelSpec("test", content_types=onep_io.TRAINING_CONTENT_TYPES,
                            default_content_type=onep_io.PROTOBUF))
    metrics = _metric_definitions()

    def load(self, model_dir: Path) -> RCFPredictor:
        return RCFPredictor(Forest.load(Path(model_dir)))

    def train(self, ctx: TrainingContext) -> None:
        hp = self.hyperparameters.validate({k: v for k, v in ctx.hyperparameters.items() if v is not None})
        unknown = sorted(set(ctx.channels) - {c.name for c in self.channels})
        if unknown:
            raise DataError(f"Random Cut Forest reads the train and test channels, not {', '.join(unknown)}.")
        if "train" not in ctx.channels:
            raise DataError("Random Cut Forest needs a 'train' channel.")
        x, _ = onep_io.read_training_channel(ctx.channels["train"], label_size=0, feature_dim=hp["feature_dim"],
                                             label_required=False, dense=True)
        test = None
        if "test" in ctx.channels:
            test = onep_io.read_training_channel(ctx.channels["test"], label_size=1, feature_dim=hp["feature_dim"],
                                                 dense=True)
        x = np.asarray(x, dtype=np.float64)
        ctx.print(f"Random Cut Forest: {hp['num_trees']} trees of {min(hp['num_samples_per_tree'], len(x))} samples "
                  f"from {len(x)} training records with {x.shape[1]} features.")
        started = time.perf_counter()
        forest = Forest.build(x, num_trees=hp["num_trees"], samples_per_tree=hp["num_samples_per_tree"], seed=SEED)
        elapsed = time.perf_counter() - started
        qm.progress(ctx, 1, 1)
        qm.throughput(ctx, len(x) / max(elapsed, 1e-9))
        if test is not None:
            labels = np.asarray(test[1], dtype=np.float64).reshape(len(test[1]), -1)[:, 0]
            bad = (labels != 0) & (labels != 1)
            if bad.any():
                row = int(np.flatnonzero(bad)[0]) + 1
                raise DataError(f"Channel 'test', record {row}: label {labels[row - 1]!r} must be 1 (anomaly) or 0 "
                                "(normal).")
            scores = forest.scores(np.asarray(test[0], dtype=np.float64))
            qm.test_scores(ctx, evaluate(scores, labels, hp["eval_metrics"]))
        forest.info = {"num_samples_per_tree": hp["num_samples_per_tree"], "training_records": len(x)}
        forest.save(ctx.model_dir)

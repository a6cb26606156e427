"""Cross-validation of a built-in algorithm: k-fold, stratified k-fold or leave-one-out.

scikit-learn's splitters cut the `train` records into folds. For each fold the algorithm is trained in this
process on the other folds (exactly as a training job trains it, from a CSV `train` channel and the given
hyperparameters, without a validation channel so the held-out fold stays unseen) and scores the held-out
fold through its predictor. Each metric is reported as its mean over the folds (`value`) and its population
standard deviation (`standard_deviation`, numpy's default, as `scores.std()` after `cross_val_score`); the
per-fold figures and the metrics of all out-of-fold predictions together are reported alongside, the latter
being the meaningful ones for leave-one-out, whose single-record folds cannot have an AUC.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

import numpy as np

from sagelab.algorithms.base import Channel, DataError, TrainingContext
from sagelab.evaluation import metrics, report
from sagelab.evaluator.config import EvaluatorConfig
from sagelab.evaluator.scoring import (
    Outcome,
    Predictions,
    class_predictions,
    infer_problem_type,
    measure,
    predict,
    problem_type_of,
)

if TYPE_CHECKING:
    from sagelab.processing.builtin import ProcessingContext


def splitter(config: EvaluatorConfig, problem_type: str | None):
    from sklearn.model_selection import KFold, LeaveOneOut, StratifiedKFold

    strategy = config.cv_strategy or ("KFold" if problem_type == "Regression" else "StratifiedKFold")
    if strategy == "LeaveOneOut":
        return strategy, LeaveOneOut()
    seed = config.seed if config.shuffle else None
    cls = StratifiedKFold if strategy == "StratifiedKFold" else KFold
    return strategy, cls(n_splits=config.folds, shuffle=config.shuffle, random_state=seed)


def _write_csv(path, labels: np.ndarray, features: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, np.column_stack([labels, features]), delimiter=",", fmt="%.9g")


def cross_validate(ctx: ProcessingContext, config: EvaluatorConfig, features: np.ndarray,
                   labels: np.ndarray) -> Outcome:
    algorithm = ctx.parts.algorithms.for_image(config.algorithm_image, field="Evaluator setting algorithm_image")
    hyperparameters = algorithm.hyperparameters.validate(config.hyperparameters)
    known_type = config.problem_type or problem_type_of(algorithm.name, config.hyperparameters)
    strategy, folds = splitter(config, known_type)
    try:
        splits = list(folds.split(features, labels))
    except ValueError as exc:
        raise DataError(f"{strategy} cannot split the {len(labels)} training records: {exc}") from None
    ctx.print(f"Cross-validating {algorithm.name} with {strategy}: {len(splits)} folds of {len(labels)} records")

    fold_results: list[dict[str, float | None]] = []
    scores: np.ndarray | None = None
    predicted_labels = np.full(len(labels), np.nan)
    problem_type = known_type
    for number, (train_index, test_index) in enumerate(splits, start=1):
        fold_dir = ctx.work_dir / f"fold-{number}"
        train_file = fold_dir / "train" / "train.csv"
        _write_csv(train_file, labels[train_index], features[train_index])
        model_dir, output_dir = fold_dir / "model", fold_dir / "output"
        model_dir.mkdir(parents=True)
        output_dir.mkdir(parents=True)
        ctx.print(f"Fold {number}/{len(splits)}: training on {len(train_index)} records, scoring "
                  f"{len(test_index)}")
        algorithm.train(TrainingContext(
            hyperparameters=hyperparameters, channels={"train": Channel("train", "text/csv", [train_file])},
            model_dir=model_dir, output_dir=output_dir, log=ctx.log))
        predictions = predict(algorithm.load(model_dir), features[test_index])
        shutil.rmtree(fold_dir, ignore_errors=True)
        if problem_type is None:
            problem_type = infer_problem_type(labels[test_index], predictions)
        if scores is None:
            scores = np.zeros((len(labels), *predictions.scores.shape[1:]))
        scores[test_index] = predictions.scores
        if predictions.labels is not None:
            predicted_labels[test_index] = predictions.labels
        fold_results.append(measure(problem_type, labels[test_index], predictions, config.probability_threshold))

    if scores is None or problem_type is None:
        raise DataError("Cross-validation produced no folds.")
    out_of_fold = Predictions(scores, None if np.isnan(predicted_labels).any() else predicted_labels)
    summary = metrics.summarize(fold_results)
    values = {name: s["mean"] for name, s in summary.items()}
    spread = {name: s["std"] for name, s in summary.items()}
    pooled = measure(problem_type, labels, out_of_fold, config.probability_threshold)
    ctx.print(f"{problem_type}, mean over folds: " +
              ", ".join(f"{k}={v:.6g}" for k, v in values.items() if v is not None))
    predicted = class_predictions(problem_type, out_of_fold, config.probability_threshold)
    confusion = None
    if predicted is not None:
        classes = [0.0, 1.0] if problem_type == "BinaryClassification" else None
        confusion = report.confusion_section(labels, predicted, classes)
    details: dict[str, Any] = {
        "mode": "cross-validation", "algorithm": algorithm.name, "algorithm_image": config.algorithm_image,
        "hyperparameters": config.hyperparameters, "probability_threshold": config.probability_threshold,
        "cross_validation": {"strategy": strategy, "folds": len(splits), "shuffle": config.shuffle,
                             "seed": config.seed, "fold_metrics": fold_results,
                             "out_of_fold_metrics": pooled},
    }
    if strategy == "LeaveOneOut":
        details["cross_validation"].pop("fold_metrics")  # one record each: the pooled figures say it all
    curves = metrics.binary_curves(labels, scores) if problem_type == "BinaryClassification" else {}
    built = report.build(problem_type, len(labels), values, spread, confusion=confusion, curves=curves,
                         details=details)
    return Outcome(problem_type, labels, out_of_fold, config.probability_threshold, built,
                   "out-of-fold predictions")

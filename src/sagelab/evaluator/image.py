"""The `sagelab-evaluator` built-in processing image: judge a model, or cross-validate an algorithm.

Evaluation (`mode=evaluation`, the default): inputs `model` (the model.tar.gz of a training job; or the
setting `model_name` naming a SageMaker Model) and `test` (CSV, label in the first column); the setting
`algorithm_image` names the built-in algorithm that loads the model. Every test record is scored through the
model's predictor, as an endpoint would score it.

Cross-validation (`mode=cross-validation`): input `train` (CSV, label first); the settings name the
algorithm image, its hyperparameters and the folds (see `cross_validation`).

Both write to the job's output (named `evaluation`, or its only output): `evaluation.json` (see `report`),
`confusion_matrix.png` and `roc.png` for classification, `predicted_vs_actual.png` for regression.
Settings come from the job's Environment or ContainerArguments (see `config`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms import data as data_io
from sagelab.algorithms.base import DataError
from sagelab.errors import ValidationError
from sagelab.evaluation import metrics, plots, report
from sagelab.evaluator.config import EvaluatorConfig, parse_config
from sagelab.evaluator.scoring import (
    Outcome,
    Predictions,
    bootstrap_spread,
    class_predictions,
    infer_problem_type,
    measure,
    predict,
)
from sagelab.hosting.artifacts import ModelLoadError, load_predictor
from sagelab.hosting.models import StoredModels
from sagelab.lake.uris import parse_s3_uri
from sagelab.processing.builtin import ProcessingContext

REPORT_FILE = "evaluation.json"


def run_evaluator(ctx: ProcessingContext) -> None:
    config = parse_config(ctx.environment, ctx.arguments)
    output = _output_dir(ctx)
    if config.mode == "cross-validation":
        from sagelab.evaluator.cross_validation import cross_validate

        features, labels = read_labelled(ctx, "train")
        outcome = cross_validate(ctx, config, features, labels)
    else:
        features, labels = read_labelled(ctx, "test")
        outcome = evaluate(ctx, config, features, labels)
    (output / REPORT_FILE).write_text(json.dumps(outcome.report, indent=2))
    written = [REPORT_FILE, *draw(outcome, output)]
    ctx.print(f"Wrote {', '.join(written)}")


# --- inputs and outputs -----------------------------------------------------------------------------------
def _output_dir(ctx: ProcessingContext) -> Path:
    if "evaluation" in ctx.outputs:
        return ctx.outputs["evaluation"]
    if len(ctx.outputs) == 1:
        return next(iter(ctx.outputs.values()))
    raise ValidationError("The evaluator writes evaluation.json to a ProcessingOutput named 'evaluation' (or to "
                          f"the job's only output); this job has {len(ctx.outputs)} outputs "
                          f"({', '.join(ctx.outputs) or 'none'}).")


def read_labelled(ctx: ProcessingContext, preferred: str) -> tuple[np.ndarray, np.ndarray]:
    """The data input's CSV records: features, and the label from the first column."""
    if preferred in ctx.inputs:
        name = preferred
    else:
        candidates = [n for n in ctx.inputs if n != "model"]
        if len(candidates) != 1:
            raise ValidationError(f"The evaluator reads its data from a ProcessingInput named {preferred!r} (CSV, "
                                  f"label in the first column); this job's inputs are "
                                  f"{', '.join(ctx.inputs) or 'none'}.")
        name = candidates[0]
    files = sorted(p for p in ctx.inputs[name].rglob("*") if p.is_file())
    try:
        features, labels = data_io.read_csv(files, label_size=1)
    except DataError as exc:
        raise DataError(f"Input {name!r}: {exc}") from None
    ctx.print(f"Read {len(labels)} records with {features.shape[1]} features from input {name!r}")
    return features, np.asarray(labels, dtype=np.float64)


def _model_document(ctx: ProcessingContext, config: EvaluatorConfig) -> dict[str, Any]:
    if config.model_name:
        return StoredModels(ctx.parts.resources, ctx.parts.account).get(config.model_name).doc
    if "model" not in ctx.input_uris:
        raise ValidationError("The evaluator needs the model to score: a ProcessingInput named 'model' (the "
                              "training job's model.tar.gz) with the setting algorithm_image, or the setting "
                              "model_name (a SageMaker Model).")
    if not config.algorithm_image:
        raise ValidationError("Evaluator setting algorithm_image is required with a 'model' input: the image of "
                              "the built-in algorithm that trained the model (e.g. its TrainingImage).")
    uri = parse_s3_uri(ctx.input_uris["model"], field="ProcessingInputs 'model' S3Uri")
    if not uri.key.endswith((".tar.gz", ".tgz")):
        archives = [info.key for info in ctx.parts.blobs.list(uri.bucket, uri.key)
                    if info.key.endswith((".tar.gz", ".tgz"))]
        if len(archives) != 1:
            raise DataError(f"Input 'model': expected one model.tar.gz under {uri}, found {len(archives)}.")
        uri = uri._replace(key=archives[0])
    return {"PrimaryContainer": {"Image": config.algorithm_image, "ModelDataUrl": str(uri)}}


# --- evaluation ------------------------------------------------------------------------------------------
def evaluate(ctx: ProcessingContext, config: EvaluatorConfig, features: np.ndarray,
             labels: np.ndarray) -> Outcome:
    model_doc = _model_document(ctx, config)
    try:
        predictor = load_predictor(ctx.parts.blobs, ctx.parts.algorithms, model_doc, ctx.work_dir / "model",
                                   threads=os.cpu_count() or 1)
    except ModelLoadError as exc:
        raise DataError(str(exc)) from exc
    predictions = predict(predictor, features)
    problem_type = config.problem_type or infer_problem_type(labels, predictions)
    values = measure(problem_type, labels, predictions, config.probability_threshold)
    spread = bootstrap_spread(problem_type, labels, predictions, config.probability_threshold,
                              config.bootstrap_samples, config.seed)
    ctx.print(f"{problem_type}: " + ", ".join(f"{k}={v:.6g}" for k, v in values.items() if v is not None))
    containers = model_doc.get("Containers") or [model_doc.get("PrimaryContainer")]
    details = {"mode": "evaluation", "model_data_url": containers[0].get("ModelDataUrl"),
               "probability_threshold": config.probability_threshold,
               "bootstrap_samples": config.bootstrap_samples if len(labels) > 1 else 0}
    if config.model_name:
        details["model_name"] = config.model_name
    built = report.build(problem_type, len(labels), values, spread,
                         confusion=_confusion(problem_type, labels, predictions, config.probability_threshold),
                         curves=_curves(problem_type, labels, predictions), details=details)
    return Outcome(problem_type, labels, predictions, config.probability_threshold, built, "test data")


def _confusion(problem_type: str, labels: np.ndarray, predictions: Predictions,
               threshold: float) -> dict[str, Any] | None:
    predicted = class_predictions(problem_type, predictions, threshold)
    if predicted is None:
        return None
    classes = [0.0, 1.0] if problem_type == "BinaryClassification" else None
    return report.confusion_section(labels, predicted, classes)


def _curves(problem_type: str, labels: np.ndarray, predictions: Predictions) -> dict[str, Any]:
    if problem_type != "BinaryClassification":
        return {}
    return metrics.binary_curves(labels, predictions.scores)


# --- pictures --------------------------------------------------------------------------------------------
def draw(outcome: Outcome, folder: Path) -> list[str]:
    n = len(outcome.labels)
    scores = outcome.predictions.scores
    predicted = class_predictions(outcome.problem_type, outcome.predictions, outcome.threshold)
    written = []
    if predicted is None:
        plots.predicted_vs_actual_png(folder / "predicted_vs_actual.png", outcome.labels, scores,
                                      f"Predicted vs actual ({outcome.what}, n={n})")
        return ["predicted_vs_actual.png"]
    plots.confusion_matrix_png(folder / "confusion_matrix.png", outcome.labels, predicted,
                               f"Confusion matrix ({outcome.what}, n={n})")
    written.append("confusion_matrix.png")
    has_scores = outcome.problem_type == "BinaryClassification" or scores.ndim == 2
    if has_scores and plots.roc_png(folder / "roc.png", outcome.labels, scores, f"ROC curve ({outcome.what}, n={n})"):
        written.append("roc.png")
    return written

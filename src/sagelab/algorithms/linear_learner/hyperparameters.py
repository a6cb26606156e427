"""Linear Learner's declared surface: its hyperparameter schema and the metrics its log carries.

Names, defaults and valid ranges follow the SageMaker developer guide (`ll_hyperparameters`) and the SageMaker
Python SDK's validators; the metric regexes are the service-side MetricDefinitions of a real Linear Learner job.
"""

from __future__ import annotations

import math
from typing import Any

from sagelab.algorithms.base import MetricDefinition
from sagelab.algorithms.hyperparameters import AUTO, Hyperparameter, HyperparameterSchema
from sagelab.algorithms.linear_learner.sgd import BINARY_LOSSES, MULTICLASS_LOSSES, REGRESSION_LOSSES
from sagelab.errors import ValidationError

PREDICTOR_TYPES = ("binary_classifier", "multiclass_classifier", "regressor")
LOSSES_BY_TYPE = {"binary_classifier": BINARY_LOSSES, "multiclass_classifier": MULTICLASS_LOSSES,
                  "regressor": REGRESSION_LOSSES}
DEFAULT_LOSS = {"binary_classifier": "logistic", "multiclass_classifier": "softmax_loss",
                "regressor": "squared_loss"}
#: The objective's name in the log; mse_objective and the two cross-entropy names are seen in real logs.
OBJECTIVE_NAMES = {
    "logistic": "binary_classification_cross_entropy_objective",
    "hinge_loss": "binary_classification_hinge_loss_objective",
    "softmax_loss": "multiclass_cross_entropy_objective",
    "squared_loss": "mse_objective",
    "absolute_loss": "absolute_loss_objective",
    "eps_insensitive_squared_loss": "eps_insensitive_squared_loss_objective",
    "eps_insensitive_absolute_loss": "eps_insensitive_absolute_loss_objective",
    "quantile_loss": "quantile_loss_objective",
    "huber_loss": "huber_loss_objective",
}
SELECTION_CRITERIA = ("accuracy", "f_beta", "precision_at_target_recall", "recall_at_target_precision",
                      "loss_function", "f1", "cross_entropy_loss")


def _unit(name: str, default: float, help: str) -> Hyperparameter:
    """A float in the open interval (0, 1)."""
    return Hyperparameter(name, "float", default, min=0, max=1, min_inclusive=False, max_inclusive=False,
                          help=help)


def _auto(name: str, kind: str, **kwargs: Any) -> Hyperparameter:
    return Hyperparameter(name, kind, AUTO, allow_auto=True, **kwargs)


PARAMS = (
    Hyperparameter("predictor_type", "str", required=True, choices=PREDICTOR_TYPES,
                   help="binary_classifier (labels 0/1), multiclass_classifier (0..num_classes-1) or regressor."),
    Hyperparameter("num_classes", "int", None, min=1, max=1_000_000,
                   help="Number of classes; required for multiclass_classifier (3..1,000,000), else ignored."),
    _auto("feature_dim", "int", min=1, help="Number of features; when given it must match the data."),
    Hyperparameter("accuracy_top_k", "int", 3, min=1, max=1_000_000, help="k of multiclass top-k accuracy."),
    Hyperparameter("balance_multiclass_weights", "bool", False,
                   help="Weight classes so each has equal importance in the loss (multiclass)."),
    _auto("beta_1", "float", min=0, max=1, max_inclusive=False, help="Adam's first-moment decay; auto = 0.9."),
    _auto("beta_2", "float", min=0, max=1, max_inclusive=False, help="Adam's second-moment decay; auto = 0.999."),
    _auto("bias_lr_mult", "float", min=0, min_inclusive=False, help="Bias learning rate multiplier; auto = 1."),
    _auto("bias_wd_mult", "float", min=0, help="Bias L2 multiplier; auto = 0 (no bias regularisation)."),
    Hyperparameter("binary_classifier_model_selection_criteria", "str", "accuracy", choices=SELECTION_CRITERIA,
                   help="How binary models and their threshold are chosen on the validation data."),
    Hyperparameter("early_stopping_patience", "int", 3, min=1,
                   help="Epochs without improvement before training stops (> epochs disables)."),
    Hyperparameter("early_stopping_tolerance", "float", 0.001, min=0, min_inclusive=False,
                   help="Relative loss improvement below which an epoch counts as no improvement."),
    Hyperparameter("epochs", "int", 15, min=1, help="Maximum passes over the training data."),
    Hyperparameter("f_beta", "float", 1.0, min=0, min_inclusive=False, help="beta of the F-beta metrics."),
    Hyperparameter("huber_delta", "float", 1.0, min=0, help="Huber loss: L2 inside delta, L1 outside."),
    Hyperparameter("init_bias", "float", 0.0, help="Initial bias."),
    Hyperparameter("init_method", "str", "uniform", choices=("uniform", "normal"),
                   help="Initial weight distribution."),
    Hyperparameter("init_scale", "float", 0.07, min=0, min_inclusive=False,
                   help="Uniform initial weights in [-init_scale, init_scale]."),
    Hyperparameter("init_sigma", "float", 0.01, min=0, min_inclusive=False,
                   help="Standard deviation of normal initial weights."),
    _auto("l1", "float", min=0, help="L1 regularisation; auto = 0 for the first model."),
    _auto("learning_rate", "float", min=0, min_inclusive=False,
          help="Step size; auto = 0.1 (adam, sgd) or 0.01 (rmsprop)."),
    Hyperparameter("loss", "str", AUTO, choices=(AUTO, *BINARY_LOSSES, *MULTICLASS_LOSSES, *REGRESSION_LOSSES),
                   help="auto = logistic, softmax_loss or squared_loss by predictor_type."),
    Hyperparameter("loss_insensitivity", "float", 0.01, min=0, min_inclusive=False,
                   help="Epsilon of the eps_insensitive losses, in label units."),
    _auto("lr_scheduler_factor", "float", min=0, max=1, min_inclusive=False, max_inclusive=False,
          help="Learning rate multiplier every lr_scheduler_step updates; auto = 0.99."),
    _auto("lr_scheduler_minimum_lr", "float", min=0, min_inclusive=False,
          help="Floor of the scheduled learning rate; auto = 1e-5."),
    _auto("lr_scheduler_step", "int", min=1, help="Updates between learning rate decreases; auto = 100."),
    Hyperparameter("margin", "float", 1.0, min=0, help="Margin of the hinge loss."),
    Hyperparameter("mini_batch_size", "int", 1000, min=1, help="Records per mini-batch."),
    _auto("momentum", "float", min=0, max=1, max_inclusive=False, help="Momentum of sgd (and rmsprop); auto = 0."),
    Hyperparameter("normalize_data", "bool", True, allow_auto=True,
                   help="Scale features to unit standard deviation."),
    _auto("normalize_label", "bool", help="Scale regression labels; auto = true for regressor."),
    _auto("num_calibration_samples", "int", min=1,
          help="Records used to calibrate the binary threshold; auto = all."),
    _auto("num_models", "int", min=1, help="Models trained in parallel; the best is kept."),
    Hyperparameter("num_point_for_scaler", "int", 10000, min=1,
                   help="Rows used to compute the normalisation statistics."),
    Hyperparameter("optimizer", "str", AUTO, choices=(AUTO, "sgd", "adam", "rmsprop"), help="auto = adam."),
    Hyperparameter("positive_example_weight_mult", "str", "1.0",
                   help="Weight of positive examples (binary): a number > 0, 'balanced' or 'auto'."),
    _unit("quantile", 0.5, "Quantile of quantile_loss."),
    _unit("target_precision", 0.8, "Precision held by recall_at_target_precision."),
    _unit("target_recall", 0.8, "Recall held by precision_at_target_recall."),
    _auto("unbias_data", "bool", help="Shift features to mean 0; auto = use_bias."),
    _auto("unbias_label", "bool", help="Shift regression labels to mean 0; auto = use_bias."),
    Hyperparameter("use_bias", "bool", True, help="Fit an intercept."),
    Hyperparameter("use_lr_scheduler", "bool", True, help="Decrease the learning rate in steps."),
    _auto("wd", "float", min=0, help="L2 regularisation (weight decay); auto = 1e-4 for the first model."),
)


def _check_positive_weight(values: dict[str, Any]) -> None:
    raw = values["positive_example_weight_mult"]
    text = str(raw).strip().lower()
    if text in (AUTO, "balanced"):
        values["positive_example_weight_mult"] = text
        return
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not (math.isfinite(number) and number > 0):
        raise ValidationError("Hyperparameter 'positive_example_weight_mult': expected a number > 0, 'balanced' "
                              f"or 'auto', got {raw!r}.")
    values["positive_example_weight_mult"] = number


def _check_problem(values: dict[str, Any]) -> None:
    ptype = values["predictor_type"]
    if ptype == "multiclass_classifier":
        classes = values.get("num_classes")
        if classes is None:
            raise ValidationError("Hyperparameter 'num_classes' is required when predictor_type is "
                                  "multiclass_classifier: expected an integer from 3 to 1000000.")
        if classes < 3:
            raise ValidationError("Hyperparameter 'num_classes': expected an integer from 3 to 1000000 for "
                                  f"predictor_type multiclass_classifier, got {classes} (use binary_classifier "
                                  "for two classes).")
    loss = values["loss"]
    allowed = LOSSES_BY_TYPE[ptype]
    if loss != AUTO and loss not in allowed:
        raise ValidationError(f"Hyperparameter 'loss': {loss!r} cannot be used with predictor_type {ptype!r}; "
                              f"expected one of auto, {', '.join(allowed)}.")


SCHEMA = HyperparameterSchema(PARAMS, checks=(_check_positive_weight, _check_problem))


def _quality(channel: str, name: str, tag: str) -> str:
    return rf"#quality_metric: host=\S+, {channel} {name} <{tag}>=(\S+)"


def metric_definitions() -> tuple[MetricDefinition, ...]:
    """The service-side definitions of a real Linear Learner job (an HPO dump), plus rmse."""
    out = [
        MetricDefinition("train:progress", r"#progress_metric: host=\S+, completed (\S+) %", "Maximize"),
        MetricDefinition("train:throughput", r"#throughput_metric: host=\S+, train throughput=(\S+) records/second",
                         "Maximize"),
        MetricDefinition("train:objective_loss",
                         r"#quality_metric: host=\S+, epoch=\S+, train \S+_objective <loss>=(\S+)"),
        MetricDefinition("validation:objective_loss",
                         r"#quality_metric: host=\S+, epoch=\S+, validation \S+_objective <loss>=(\S+)"),
        MetricDefinition("validation:objective_loss:final", _quality("validation", r"\S+_objective", "loss")),
    ]
    scores = [("binary_classification_accuracy", "binary_classification_accuracy"),
              ("binary_f_beta", r"binary_f_\S+"), ("precision", "precision"), ("recall", "recall"),
              ("roc_auc_score", "roc_auc_score"), ("multiclass_accuracy", "multiclass_accuracy"),
              ("multiclass_top_k_accuracy", r"multiclass_top_k_accuracy_\S+"), ("macro_f_beta", r"macro_f_\S+"),
              ("macro_precision", "macro_precision"), ("macro_recall", "macro_recall"), ("dcg", "dcg")]
    for channel in ("validation", "test"):
        if channel == "test":
            out.append(MetricDefinition("test:objective_loss", _quality("test", r"\S+_objective", "loss")))
        for name, pattern in scores:
            out.append(MetricDefinition(f"{channel}:{name}", _quality(channel, pattern, "score"), "Maximize"))
        for name in ("mse", "rmse", "absolute_loss"):
            out.append(MetricDefinition(f"{channel}:{name}", _quality(channel, name, "loss")))
    return tuple(out)

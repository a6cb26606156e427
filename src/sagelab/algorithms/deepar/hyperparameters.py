"""DeepAR's hyperparameter schema: the names, defaults and valid values SageMaker's `forecasting-deepar`
accepts."""

from __future__ import annotations

import json
import re
from typing import Any

from sagelab.algorithms.hyperparameters import Hyperparameter, HyperparameterSchema
from sagelab.errors import ValidationError

LIKELIHOODS = ("gaussian", "beta", "negative-binomial", "student-T", "deterministic-L1")
FREQUENCY = re.compile(r"^([1-9][0-9]*)?(M|W|D|H|min)$")
DEFAULT_QUANTILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def parse_frequency(text: str) -> tuple[int, str]:
    """'5min' -> (5, 'min'); 'H' -> (1, 'H')."""
    match = FREQUENCY.match(text.strip())
    if not match:
        raise ValueError(text)
    return int(match.group(1) or 1), match.group(2)


def _check(values: dict[str, Any]) -> None:
    try:
        parse_frequency(values["time_freq"])
    except ValueError:
        raise ValidationError(f"Hyperparameter 'time_freq': expected an optional positive integer and one of M, W, "
                              f"D, H, min (such as H, 5min or 2D), got {values['time_freq']!r}.") from None
    cardinality = values["cardinality"]
    if isinstance(cardinality, str) and cardinality.strip().lower() in ("auto", "ignore", ""):
        values["cardinality"] = cardinality.strip().lower()
    else:
        try:
            parsed = json.loads(cardinality) if isinstance(cardinality, str) else cardinality
        except json.JSONDecodeError:
            parsed = None
        if (not isinstance(parsed, list) or not parsed
                or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in parsed)):
            raise ValidationError(f"Hyperparameter 'cardinality': expected auto, ignore, an empty string or a JSON "
                                  f"list of category counts >= 1 (such as [2, 7]), got {cardinality!r}.")
        values["cardinality"] = parsed
    dynamic = values["num_dynamic_feat"]
    text = str(dynamic).strip().lower()
    if text in ("auto", "ignore", ""):
        values["num_dynamic_feat"] = text
    elif text.isdigit():
        values["num_dynamic_feat"] = int(text)
    else:
        raise ValidationError(f"Hyperparameter 'num_dynamic_feat': expected auto, ignore, an empty string or the "
                              f"number of dynamic features (an integer >= 0), got {dynamic!r}.")
    quantiles = values["test_quantiles"]
    if (not isinstance(quantiles, list) or not quantiles
            or any(isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 < q < 1 for q in quantiles)):
        raise ValidationError(f"Hyperparameter 'test_quantiles': expected a JSON list of quantiles in (0, 1), such "
                              f"as [0.1, 0.5, 0.9], got {json.dumps(quantiles)}.")


SCHEMA = HyperparameterSchema((
    Hyperparameter("context_length", "int", required=True, min=1,
                   help="Time points the model sees before forecasting."),
    Hyperparameter("epochs", "int", required=True, min=1, help="Passes over the training data."),
    Hyperparameter("prediction_length", "int", required=True, min=1, help="Time points to forecast."),
    Hyperparameter("time_freq", "str", required=True, example="H", help="Granularity: M, W, D, H or min, optionally with a "
                                                            "multiple (5min, 2H)."),
    Hyperparameter("cardinality", "str", "auto",
                   help="Categories per `cat` feature: auto (from the data), ignore, or a JSON list."),
    Hyperparameter("num_dynamic_feat", "str", "auto",
                   help="Dynamic features per series: auto (from the data), ignore, or a number."),
    Hyperparameter("dropout_rate", "float", 0.1, min=0, max=1, max_inclusive=False, help="Dropout between LSTM "
                                                                                          "layers."),
    Hyperparameter("early_stopping_patience", "int", None, min=1,
                   help="Epochs without a better training loss before training stops."),
    Hyperparameter("embedding_dimension", "int", 10, min=1, help="Size of each category's embedding."),
    Hyperparameter("learning_rate", "float", 0.001, min=1e-6, max=1, help="Adam's learning rate."),
    Hyperparameter("likelihood", "str", "student-T", choices=LIKELIHOODS, help="The forecast distribution."),
    Hyperparameter("mini_batch_size", "int", 128, min=1, help="Windows per mini-batch."),
    Hyperparameter("num_cells", "int", 40, min=1, max=200, help="Cells per LSTM layer."),
    Hyperparameter("num_layers", "int", 2, min=1, max=8, help="LSTM layers."),
    Hyperparameter("num_eval_samples", "int", 100, min=1, help="Sample paths per test series."),
    Hyperparameter("test_quantiles", "json", DEFAULT_QUANTILES, help="Quantiles scored on the test channel."),
), checks=(_check,))

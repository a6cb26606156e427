"""BlazingText's hyperparameter schema: the Word2Vec modes' and the supervised mode's names, defaults and
valid values as SageMaker's `blazingtext` accepts them (one schema: `mode` says which apply)."""

from __future__ import annotations

from typing import Any

from sagelab.algorithms.hyperparameters import Hyperparameter, HyperparameterSchema
from sagelab.errors import ValidationError

WORD2VEC_MODES = ("cbow", "skipgram", "batch_skipgram")
MODES = (*WORD2VEC_MODES, "supervised")
WORD2VEC_ONLY = ("batch_size", "evaluation", "min_char", "max_char", "negative_samples", "sampling_threshold",
                 "subwords", "window_size")
SUPERVISED_ONLY = ("early_stopping", "min_epochs", "patience", "word_ngrams")


def _check(values: dict[str, Any]) -> None:
    if values["min_char"] > values["max_char"]:
        raise ValidationError(f"Hyperparameter 'min_char' ({values['min_char']}) must not exceed 'max_char' "
                              f"({values['max_char']}).")
    if values["mode"] == "supervised" and values["min_epochs"] > values["epochs"]:
        raise ValidationError(f"Hyperparameter 'min_epochs' ({values['min_epochs']}) must not exceed 'epochs' "
                              f"({values['epochs']}).")


SCHEMA = HyperparameterSchema((
    Hyperparameter("mode", "str", required=True, choices=MODES,
                   help="Word2Vec (cbow, skipgram, batch_skipgram) or text classification (supervised)."),
    Hyperparameter("buckets", "int", 2_000_000, min=1, help="Hash buckets for subwords and word n-grams."),
    Hyperparameter("epochs", "int", 5, min=1, help="Passes over the training data."),
    Hyperparameter("learning_rate", "float", 0.05, min=0, min_inclusive=False, help="Initial step size."),
    Hyperparameter("min_count", "int", 5, min=0, help="Words seen fewer times are dropped."),
    Hyperparameter("vector_dim", "int", 100, min=1, help="Dimension of the word vectors."),
    # Word2Vec
    Hyperparameter("batch_size", "int", 11, min=1, help="batch_skipgram: words per batch (accepted, unused)."),
    Hyperparameter("evaluation", "bool", True, help="Score the vectors on WS-353 word similarity (mean_rho)."),
    Hyperparameter("min_char", "int", 3, min=1, help="Shortest character n-gram of a subword."),
    Hyperparameter("max_char", "int", 6, min=1, help="Longest character n-gram of a subword."),
    Hyperparameter("negative_samples", "int", 5, min=1, help="Negative samples per positive one."),
    Hyperparameter("sampling_threshold", "float", 0.0001, min=0, max=0.001, min_inclusive=False,
                   help="Frequent words are down-sampled above this frequency."),
    Hyperparameter("subwords", "bool", False, help="Learn character n-gram vectors (vectors for unseen words)."),
    Hyperparameter("window_size", "int", 5, min=1, help="Context window."),
    # supervised
    Hyperparameter("early_stopping", "bool", False, help="Stop when validation accuracy stops improving."),
    Hyperparameter("min_epochs", "int", 5, min=1, help="Epochs before early stopping may stop training."),
    Hyperparameter("patience", "int", 4, min=1, help="Epochs without improvement before stopping."),
    Hyperparameter("word_ngrams", "int", 2, min=1, help="Word n-grams used as features."),
), checks=(_check,))

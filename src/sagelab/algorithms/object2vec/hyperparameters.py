"""Object2Vec's hyperparameter schema: the names, defaults and valid values SageMaker's `object2vec` accepts."""

from __future__ import annotations

from typing import Any

from sagelab.algorithms.hyperparameters import AUTO, Hyperparameter, HyperparameterSchema
from sagelab.errors import ValidationError

NETWORKS = ("hcnn", "bilstm", "pooled_embedding")
COMPARATORS = ("hadamard", "concat", "abs_diff")
OPTIMIZERS = ("adadelta", "adagrad", "adam", "sgd", "rmsprop")


def _check(values: dict[str, Any]) -> None:
    raw = values["comparator_list"]
    text = ",".join(raw) if isinstance(raw, list) else str(raw).strip().strip("[]").replace('"', "")
    comparators = [c.strip() for c in text.split(",") if c.strip()]
    if not comparators or any(c not in COMPARATORS for c in comparators):
        raise ValidationError(f"Hyperparameter 'comparator_list': expected a comma-separated list of "
                              f"{', '.join(COMPARATORS)}, got {values['comparator_list']!r}.")
    values["comparator_list"] = list(dict.fromkeys(comparators))
    if values["enc1_network"] != "enc0":
        for name in ("enc1_max_seq_len", "enc1_vocab_size"):
            if values[name] is None:
                raise ValidationError(f"Hyperparameter {name!r} is required when enc1_network is "
                                      f"{values['enc1_network']!r} (not 'enc0').")
    for side in ("enc0", "enc1"):
        for suffix in ("pretrained_embedding_file", "vocab_file"):
            name = f"{side}_{suffix}"
            if values[name]:
                raise ValidationError(f"Hyperparameter {name!r}: pretrained token embeddings are not supported by "
                                      f"sagelab (no auxiliary embedding files are read); expected an empty string, "
                                      f"got {values[name]!r}.")
    if values["tied_token_embedding_weight"] and values["enc1_network"] != "enc0" and (
            values["enc1_vocab_size"] != values["enc0_vocab_size"]
            or values["enc1_token_embedding_dim"] != values["enc0_token_embedding_dim"]):
        raise ValidationError("Hyperparameter 'tied_token_embedding_weight': both encoders must have the same "
                              "vocabulary size and token embedding dimension to share their token embeddings.")


def _side(side: str, required: bool) -> tuple[Hyperparameter, ...]:
    return (
        Hyperparameter(f"{side}_max_seq_len", "int", None, required=required, min=1, max=5000,
                       help=f"Longest token sequence of {side} (longer ones are cut)."),
        Hyperparameter(f"{side}_vocab_size", "int", None, required=required, min=2, max=3_000_000,
                       help=f"Vocabulary size of {side}: token ids are 0..size-1."),
        Hyperparameter(f"{side}_token_embedding_dim", "int", 300, min=2, max=1000,
                       help=f"Token embedding size of {side}."),
        Hyperparameter(f"{side}_layers", "int", AUTO, allow_auto=True, min=1, max=4,
                       help="Layers of the encoder; auto = 2 for hcnn, 1 for bilstm."),
        Hyperparameter(f"{side}_cnn_filter_width", "int", 3, min=1, max=9, help="hcnn: convolution width."),
        Hyperparameter(f"{side}_freeze_pretrained_embedding", "bool", True,
                       help="Keep pretrained embeddings fixed (no pretrained embeddings are read)."),
        Hyperparameter(f"{side}_pretrained_embedding_file", "str", "", help="Not supported: must be empty."),
        Hyperparameter(f"{side}_vocab_file", "str", "", help="Not supported: must be empty."),
    )


SCHEMA = HyperparameterSchema((
    *_side("enc0", True),
    *_side("enc1", False),
    Hyperparameter("enc0_network", "str", "hcnn", choices=NETWORKS, help="Encoder of in0."),
    Hyperparameter("enc1_network", "str", "enc0", choices=(*NETWORKS, "enc0"),
                   help="Encoder of in1; enc0 = the very same encoder as in0 (shared weights)."),
    Hyperparameter("enc_dim", "int", 4096, min=4, max=10_000, help="Size of each encoder's output."),
    Hyperparameter("tied_token_embedding_weight", "bool", False, help="Both encoders share token embeddings."),
    Hyperparameter("comparator_list", "str", "hadamard, concat, abs_diff",
                   help="How the two encodings are compared: hadamard, concat, abs_diff."),
    Hyperparameter("output_layer", "str", "softmax", choices=("softmax", "mean_squared_error"),
                   help="Classification (softmax) or regression (mean_squared_error)."),
    Hyperparameter("num_classes", "int", 2, min=2, max=30, help="Classes of a softmax output."),
    Hyperparameter("mlp_layers", "int", 2, min=0, max=10, help="Hidden layers after the comparator."),
    Hyperparameter("mlp_dim", "int", 512, min=2, max=10_000, help="Width of those layers."),
    Hyperparameter("mlp_activation", "str", "linear", choices=("tanh", "relu", "linear"),
                   help="Their activation."),
    Hyperparameter("epochs", "int", 30, min=1, max=100, help="Most passes over the training data."),
    Hyperparameter("learning_rate", "float", 0.0004, min=1e-6, max=1.0, help="Optimizer learning rate."),
    Hyperparameter("mini_batch_size", "int", 32, min=1, max=10_000, help="Pairs per mini-batch."),
    Hyperparameter("optimizer", "str", "adam", choices=OPTIMIZERS, help="Optimizer."),
    Hyperparameter("dropout", "float", 0.0, min=0, max=1, help="Dropout in the encoders and the MLP."),
    Hyperparameter("weight_decay", "float", 0.0, min=0, max=10_000, help="L2 weight decay."),
    Hyperparameter("early_stopping_patience", "int", 3, min=1, max=5,
                   help="Epochs without improvement (validation) before training stops."),
    Hyperparameter("early_stopping_tolerance", "float", 0.01, min=1e-6, max=0.1,
                   help="Relative improvement of the validation loss that counts."),
    Hyperparameter("negative_sampling_rate", "int", 0, min=0, max=100,
                   help="Negative pairs (label 0) drawn per positive pair by pairing in0 with a random in1."),
    Hyperparameter("bucket_width", "int", 0, min=0, max=100, help="Length bucketing (accepted, unused)."),
    Hyperparameter("token_embedding_storage_type", "str", "dense", choices=("dense", "row_sparse"),
                   help="Gradient storage of the token embeddings (accepted; always dense)."),
), checks=(_check,))

"""Seq2Seq's hyperparameter schema: the names, defaults and valid values of SageMaker's `seq2seq` (DG
`seq-2-seq-hyperparameters`). Every one is optional."""

from __future__ import annotations

from typing import Any

from sagelab.algorithms.hyperparameters import AUTO, Hyperparameter, HyperparameterSchema
from sagelab.errors import ValidationError

METRICS = ("perplexity", "accuracy", "bleu")


def _check(values: dict[str, Any]) -> None:
    if values["rnn_num_hidden"] % 2:
        # The first encoder layer is bidirectional: each direction has half of the hidden units.
        raise ValidationError(f"Hyperparameter 'rnn_num_hidden': expected an even integer (the bidirectional first "
                              f"encoder layer gives each direction half), got {values['rnn_num_hidden']!r}.")
    if values["decoder_type"] == "cnn":
        raise ValidationError("Hyperparameter 'decoder_type': the convolutional decoder is not supported by sagelab "
                              "(encoder_type cnn is, with the rnn decoder); expected rnn, got 'cnn'.")
    if values["max_num_batches"] == 0:
        raise ValidationError("Hyperparameter 'max_num_batches': expected -1 (no limit) or a positive integer, got 0.")
    if values["momentum"] is not None and values["optimizer_type"] != "sgd":
        raise ValidationError(f"Hyperparameter 'momentum' is only used with optimizer_type sgd; do not pass it with "
                              f"optimizer_type {values['optimizer_type']!r}.")


def _int(name: str, default: Any, help: str, *, low: int = 1, **more: Any) -> Hyperparameter:
    return Hyperparameter(name, "int", default, min=low, help=help, **more)


def _dropout(name: str, help: str) -> Hyperparameter:
    return Hyperparameter(name, "float", 0.0, min=0.0, max=1.0, help=help)


SCHEMA = HyperparameterSchema((
    _int("max_seq_len_source", 100, "Longest source sequence; longer ones are truncated."),
    _int("max_seq_len_target", 100, "Longest target sequence; longer ones are truncated."),
    Hyperparameter("encoder_type", "str", "rnn", choices=("rnn", "cnn"), help="rnn (Bahdanau) or cnn (Gehring)."),
    Hyperparameter("decoder_type", "str", "rnn", choices=("rnn", "cnn"), help="Only rnn is supported."),
    _int("num_layers_encoder", 1, "Encoder layers."),
    _int("num_layers_decoder", 1, "Decoder layers."),
    _int("rnn_num_hidden", 1024, "RNN hidden units of encoder and decoder (even)."),
    Hyperparameter("rnn_cell_type", "str", "lstm", choices=("lstm", "gru")),
    Hyperparameter("rnn_decoder_state_init", "str", "last", choices=("last", "avg", "zero"),
                   help="How the decoder's first state comes from the encoder."),
    Hyperparameter("rnn_residual_connections", "bool", False, help="Residual connections in stacked RNN layers."),
    _int("rnn_first_residual_layer", 2, "First RNN layer with a residual connection."),
    _int("cnn_kernel_width_encoder", 3, "Kernel width of the cnn encoder."),
    _int("cnn_kernel_width_decoder", 5, "Kernel width of the cnn decoder (not supported)."),
    _int("cnn_num_hidden", 512, "Hidden units of the cnn encoder."),
    Hyperparameter("cnn_activation_type", "str", "glu", choices=("glu", "relu", "softrelu", "sigmoid", "tanh")),
    _dropout("cnn_hidden_dropout", "Dropout between convolutional layers."),
    _int("num_embed_source", 512, "Source token embedding size."),
    _int("num_embed_target", 512, "Target token embedding size."),
    _dropout("embed_dropout_source", "Dropout on source embeddings."),
    _dropout("embed_dropout_target", "Dropout on target embeddings."),
    Hyperparameter("rnn_attention_type", "str", "mlp", choices=("dot", "fixed", "mlp", "bilinear")),
    Hyperparameter("rnn_attention_num_hidden", "int", AUTO, min=1, allow_auto=True,
                   help="Hidden units of the mlp attention; auto = rnn_num_hidden."),
    Hyperparameter("rnn_attention_in_upper_layers", "bool", True, help="Accepted; see the algorithm's docstring."),
    _dropout("rnn_decoder_hidden_dropout", "Dropout on the decoder's attentional hidden state."),
    _int("batch_size", 64, "Mini-batch size."),
    Hyperparameter("bucketing_enabled", "bool", True, help="Batch sentences of similar lengths together."),
    _int("bucket_width", 10, "Width of the length buckets."),
    Hyperparameter("loss_type", "str", "cross-entropy", choices=("cross-entropy",)),
    Hyperparameter("training_metric", "str", "perplexity", choices=("perplexity", "accuracy")),
    Hyperparameter("optimized_metric", "str", "perplexity", choices=METRICS,
                   help="Early stopping and the kept model follow this validation metric."),
    _int("bleu_sample_size", 0, "Validation sentences decoded for bleu; -1 all.", low=-1),
    _int("max_num_batches", -1, "Most updates; -1 no limit.", low=-1),
    _int("checkpoint_frequency_num_batches", 1000, "Evaluate (checkpoint) every this many batches."),
    _int("checkpoint_threshold", 3, "Checkpoints without improvement before training stops."),
    Hyperparameter("max_num_epochs", "int", None, min=1, help="Most passes over the training data."),
    Hyperparameter("optimizer_type", "str", "adam", choices=("adam", "sgd", "rmsprop")),
    Hyperparameter("weight_init_type", "str", "xavier", choices=("uniform", "xavier")),
    Hyperparameter("weight_init_scale", "float", 2.34, min=0.0, min_inclusive=False),
    Hyperparameter("xavier_factor_type", "str", "in", choices=("in", "out", "avg")),
    Hyperparameter("learning_rate", "float", 0.0003, min=0.0, min_inclusive=False),
    Hyperparameter("weight_decay", "float", 0.0, min=0.0),
    Hyperparameter("momentum", "float", None, min=0.0, max=1.0, help="sgd only."),
    Hyperparameter("clip_gradient", "float", 1.0, help="Clip gradient values beyond +-this; negative: no clipping."),
    Hyperparameter("lr_scheduler_type", "str", "plateau_reduce",
                   choices=("plateau_reduce", "fixed_rate_inv_t", "fixed_rate_inv_sqrt_t")),
    Hyperparameter("plateau_reduce_lr_factor", "float", 0.5, min=0.0, max=1.0, min_inclusive=False),
    _int("plateau_reduce_lr_threshold", 3, "Checkpoints without improvement before the rate is reduced."),
    _int("fixed_rate_lr_half_life", 10, "Checkpoints after which fixed_rate_* schedulers halve the rate."),
    _int("beam_size", 5, "Beam width for bleu during training and for inference."),
), checks=(_check,))

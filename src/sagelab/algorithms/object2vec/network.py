"""Object2Vec's network and its artifact.

Two encoders turn the token sequences in0 and in1 into vectors of enc_dim; the comparator joins them
(hadamard: e0 * e1, concat: [e0, e1], abs_diff: |e0 - e1|, in `comparator_list` order); an MLP of mlp_layers
x mlp_dim (mlp_activation) ends in num_classes logits (softmax) or one value (mean_squared_error).

Encoders (token id `vocab_size` pads; padded positions are masked):
- pooled_embedding: the mean of the token embeddings, then a linear layer to enc_dim;
- hcnn: layers of 1-D convolutions (cnn_filter_width, ReLU) over the embeddings, max-pooled over time, then a
  linear layer to enc_dim (a CNN encoder; AWS's "hierarchical CNN" internals are not documented);
- bilstm: a bidirectional LSTM of `layers` layers; the mean of its outputs, then a linear layer to enc_dim.
enc1_network enc0 makes in1 use the very same encoder (weights shared).

Artifact: `model.pt` (`state_dict`, read with `torch.load(weights_only=True)`) and `model.json` (settings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from sagelab.algorithms import torch_artifact

FORMAT = "sagelab-object2vec/1"
_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


class Encoder(nn.Module):
    def __init__(self, network: str, vocab_size: int, embedding_dim: int, layers: int, filter_width: int,
                 enc_dim: int, dropout: float, embedding: nn.Embedding | None = None):
        super().__init__()
        self.network = network
        self.pad = vocab_size
        self.embedding = embedding or nn.Embedding(vocab_size + 1, embedding_dim, padding_idx=vocab_size)
        self.dropout = nn.Dropout(dropout)
        width = embedding_dim
        if network == "hcnn":
            self.convolutions = nn.ModuleList(
                nn.Conv1d(embedding_dim if i == 0 else enc_dim, enc_dim, filter_width, padding=filter_width // 2)
                for i in range(layers))
            width = enc_dim
        elif network == "bilstm":
            self.lstm = nn.LSTM(embedding_dim, max(2, enc_dim // 2), layers, batch_first=True, bidirectional=True)
            width = 2 * max(2, enc_dim // 2)
        self.project = nn.Linear(width, enc_dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != self.pad).float()[:, :, None]
        x = self.dropout(self.embedding(ids))
        if self.network == "pooled_embedding":
            pooled = (x * mask).sum(1) / mask.sum(1).clamp(min=1)
        elif self.network == "hcnn":
            h = x.transpose(1, 2)
            for conv in self.convolutions:
                h = torch.relu(conv(h))[:, :, :ids.shape[1]]
            h = h.masked_fill(mask.transpose(1, 2) == 0, -1e9)
            pooled = h.max(dim=2).values
        else:
            out, _ = self.lstm(x)
            pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1)
        return self.project(pooled)


class Object2VecNet(nn.Module):
    def __init__(self, s: dict[str, Any]):
        super().__init__()
        self.settings = s
        self.enc0 = Encoder(s["enc0_network"], s["enc0_vocab_size"], s["enc0_token_embedding_dim"], s["enc0_layers"],
                            s["enc0_cnn_filter_width"], s["enc_dim"], s["dropout"])
        if s["enc1_network"] == "enc0":
            self.enc1 = None
        else:
            shared = self.enc0.embedding if s["tied_token_embedding_weight"] else None
            self.enc1 = Encoder(s["enc1_network"], s["enc1_vocab_size"], s["enc1_token_embedding_dim"],
                                s["enc1_layers"], s["enc1_cnn_filter_width"], s["enc_dim"], s["dropout"], shared)
        width = s["enc_dim"] * sum(2 if c == "concat" else 1 for c in s["comparator_list"])
        blocks: list[nn.Module] = []
        for _ in range(s["mlp_layers"]):
            blocks += [nn.Linear(width, s["mlp_dim"]), nn.Dropout(s["dropout"])]
            if s["mlp_activation"] in _ACTIVATIONS:
                blocks.append(_ACTIVATIONS[s["mlp_activation"]]())
            width = s["mlp_dim"]
        outputs = s["num_classes"] if s["output_layer"] == "softmax" else 1
        blocks.append(nn.Linear(width, outputs))
        self.mlp = nn.Sequential(*blocks)

    def encoder(self, side: int) -> Encoder:
        return self.enc0 if side == 0 or self.enc1 is None else self.enc1

    def forward(self, in0: torch.Tensor, in1: torch.Tensor) -> torch.Tensor:
        e0, e1 = self.enc0(in0), self.encoder(1)(in1)
        parts = {"hadamard": lambda: [e0 * e1], "concat": lambda: [e0, e1], "abs_diff": lambda: [(e0 - e1).abs()]}
        joined = torch.cat([t for c in self.settings["comparator_list"] for t in parts[c]()], dim=1)
        return self.mlp(joined)


def batch_ids(sequences: list[list[int]], pad: int, max_len: int) -> torch.Tensor:
    """Sequences cut to max_len and right-padded with `pad` into one (n, longest) tensor."""
    longest = max(min(len(s), max_len) for s in sequences)
    out = torch.full((len(sequences), longest), pad, dtype=torch.long)
    for i, s in enumerate(sequences):
        cut = s[:max_len]
        out[i, :len(cut)] = torch.tensor(cut, dtype=torch.long)
    return out


def save(net: Object2VecNet, model_dir: Path, extra: dict[str, Any]) -> None:
    torch_artifact.save(model_dir, net.state_dict(), {**net.settings, **extra}, model_format=FORMAT)


def load(model_dir: Path) -> Object2VecNet:
    settings, state = torch_artifact.read(model_dir, model_format=FORMAT, what="Object2Vec")
    net = Object2VecNet(settings)
    net.load_state_dict(state)
    net.eval()
    return net

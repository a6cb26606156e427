"""NTM's network and its artifact.

The network is a variational autoencoder over bag-of-words documents (NVDM / ProdLDA style):
- encoder: the word counts through `encoder_layers` (each linear, optionally batch-normalized, then the
  activation) to the mean and log-variance of a num_topics-dimensional Gaussian;
- topic weights: softmax of a sample z (training) or of the mean (inference): a point on the simplex;
- decoder: log-softmax(theta @ topic_word + bias) over the vocabulary.
The loss of a document is its reconstruction loss (the negative log-likelihood of its words) plus the KL
divergence of the encoder's Gaussian from the standard normal: `total_loss`, as AWS reports it.

The artifact is `model.pt` (the network's `state_dict`, read back with `torch.load(weights_only=True)`) and
`model.json` (the shapes and settings that rebuild the network).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from sagelab.algorithms import torch_artifact

FORMAT = "sagelab-ntm/1"
_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


class TopicVAE(nn.Module):
    def __init__(self, feature_dim: int, num_topics: int, layers: list[int], activation: str, batch_norm: bool):
        super().__init__()
        blocks: list[nn.Module] = []
        width = feature_dim
        for size in layers:
            blocks.append(nn.Linear(width, size))
            if batch_norm:
                blocks.append(nn.BatchNorm1d(size))
            blocks.append(_ACTIVATIONS[activation]())
            width = size
        self.encoder = nn.Sequential(*blocks)
        self.mean = nn.Linear(width, num_topics)
        self.log_variance = nn.Linear(width, num_topics)
        self.decoder = nn.Linear(num_topics, feature_dim)

    def encode(self, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(counts)
        return self.mean(hidden), self.log_variance(hidden).clamp(-10.0, 10.0)

    def topic_weights(self, counts: torch.Tensor) -> torch.Tensor:
        mean, _ = self.encode(counts)
        return torch.softmax(mean, dim=1)

    def losses(self, counts: torch.Tensor, generator: torch.Generator | None = None,
               sample: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction loss, KL divergence) of each document."""
        mean, log_variance = self.encode(counts)
        z = mean
        if sample:
            noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
            z = mean + noise * torch.exp(0.5 * log_variance)
        log_words = torch.log_softmax(self.decoder(torch.softmax(z, dim=1)), dim=1)
        reconstruction = -(counts * log_words).sum(dim=1)
        kl = -0.5 * (1 + log_variance - mean.pow(2) - log_variance.exp()).sum(dim=1)
        return reconstruction, kl

    def topic_word(self) -> torch.Tensor:
        """Each topic's word weights (num_topics x feature_dim), the decoder's columns."""
        return self.decoder.weight.detach().T


def save(network: TopicVAE, settings: dict[str, Any], model_dir: Path) -> None:
    torch_artifact.save(model_dir, network.state_dict(), settings, model_format=FORMAT)


def build(settings: dict[str, Any]) -> TopicVAE:
    return TopicVAE(settings["feature_dim"], settings["num_topics"], list(settings["encoder_layers"]),
                    settings["encoder_layers_activation"], settings["batch_norm"])


def load(model_dir: Path) -> tuple[TopicVAE, dict[str, Any]]:
    settings, state = torch_artifact.read(model_dir, model_format=FORMAT, what="NTM")
    network = build(settings)
    network.load_state_dict(state)
    network.eval()
    return network, settings

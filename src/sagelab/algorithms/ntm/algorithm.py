"""SageMaker's NTM (`ntm` images): an unsupervised neural topic model, trained with PyTorch.

The network is in `ntm.network` (a variational autoencoder; its loss is AWS's `total_loss`, reconstruction
plus KL divergence, per document). How the documented hyperparameters map:
- encoder_layers auto = [3 x num_topics, 2 x num_topics], as AWS documents; encoder_layers_activation and
  batch_norm shape each encoder layer.
- optimizer: torch's SGD, Adam, Adagrad, RMSprop with learning_rate; adadelta (the default) is MXNet's
  AdaDelta, which takes no learning rate (rho 0.9, epsilon 1e-5): torch's Adadelta with lr=1.
- rescale_gradient multiplies every gradient, then clip_gradient clamps each element (MXNet's order);
  weight_decay is the optimizer's L2 term.
- sub_sample: each epoch trains on that fraction of the training documents, drawn afresh.
- Early stopping: after each epoch the validation loss (the training loss without a validation channel) must
  improve by more than `tolerance` (relative) within `num_patience_epochs` epochs, else training stops; the
  best epoch's weights are kept.
- Seeded (torch generator 0): the same data and hyperparameters give the same model. Training uses every core
  from 20 million document-word cells (documents x feature_dim), one thread below (`torch_threads`).

Channels: train (required), validation and test (optional): bag-of-words CSV or recordIO-protobuf; auxiliary
(optional): `vocab.txt`, one word per line in feature order, which must hold feature_dim words; with it the
log lists each topic's top words. (AWS also reports WETC, which needs word embeddings that sagelab lacks.)

Metrics, in the 1P format: `#quality_metric: host=algo-1, epoch=3, validation total_loss <loss>=...` per epoch,
then the kept model's `train total_loss`, `validation total_loss` and `test total_loss` without `epoch=`:
`validation:total_loss` (Minimize) is the tuning metric.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import ChannelSpec, DataError, MetricDefinition, TrainingContext
from sagelab.algorithms.first_party import io as onep_io
from sagelab.algorithms.first_party import training as onep
from sagelab.algorithms.first_party.bag_of_words import read_documents
from sagelab.algorithms.hyperparameters import AUTO
from sagelab.algorithms.ntm.hyperparameters import SCHEMA
from sagelab.algorithms.torch_threads import torch_threads

SEED = 0
TOP_WORDS = 10
#: documents x vocabulary from which training uses every core (below: one thread, see torch_threads)
PARALLEL_CELLS = 20_000_000


def _channels() -> tuple[ChannelSpec, ...]:
    kinds, protobuf = onep_io.TRAINING_CONTENT_TYPES, onep_io.PROTOBUF
    return (ChannelSpec("train", required=True, content_types=kinds, default_content_type=protobuf),
            ChannelSpec("validation", content_types=kinds, default_content_type=protobuf),
            ChannelSpec("test", content_types=kinds, default_content_type=protobuf),
            ChannelSpec("auxiliary", content_types=("text/plain",), default_content_type="text/plain"))


class NTMAlgorithm:
    name = "ntm"
    image_repositories = ("ntm",)
    hyperparameters = SCHEMA
    channels = _channels()
    metrics = (*onep.progress_and_throughput_metrics(),
               *(MetricDefinition(f"{channel}:total_loss", onep.quality_metric_regex(channel, "total_loss"))
                 for channel in ("train", "validation", "test")))

    def train(self, ctx: TrainingContext) -> None:
        hp = SCHEMA.validate({key: value for key, value in ctx.hyperparameters.items() if value is not None})
        _Job(ctx, hp).run()

    def load(self, model_dir: Path) -> Any:
        from sagelab.algorithms.ntm.predictor import NTMPredictor

        return NTMPredictor(Path(model_dir))


def read_vocabulary(ctx: TrainingContext, feature_dim: int) -> list[str] | None:
    channel = ctx.channels.get("auxiliary")
    if channel is None:
        return None
    files = [path for path in channel.files if path.name.endswith("vocab.txt")]
    if not files:
        raise DataError("Channel 'auxiliary': expected a file named vocab.txt (one word per line, in feature "
                        f"order); found {', '.join(path.name for path in channel.files) or 'no files'}.")
    try:
        words = files[0].read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"Channel 'auxiliary', vocab.txt: not UTF-8 text ({exc}).") from None
    while words and not words[-1].strip():
        words.pop()
    if len(words) != feature_dim:
        raise DataError(f"Channel 'auxiliary', vocab.txt: expected feature_dim={feature_dim} words (one per "
                        f"line), got {len(words)}.")
    return [word.strip() for word in words]


class _Job:
    def __init__(self, ctx: TrainingContext, hp: dict[str, Any]):
        self.ctx, self.hp = ctx, hp

    def run(self) -> None:
        ctx, hp = self.ctx, self.hp
        started = time.perf_counter()
        x = read_documents(ctx, "train", hp["feature_dim"])
        assert x is not None  # a required channel
        validation = read_documents(ctx, "validation", hp["feature_dim"])
        test = read_documents(ctx, "test", hp["feature_dim"])
        vocabulary = read_vocabulary(ctx, hp["feature_dim"])
        ctx.print(f"Read {x.shape[0]} training documents over {x.shape[1]} words in "
                  f"{time.perf_counter() - started:.3f} s.")
        with torch_threads(x.shape[0] * x.shape[1] >= PARALLEL_CELLS):
            self.fit(x, validation, test, vocabulary)

    def fit(self, x: Any, validation: Any, test: Any, vocabulary: list[str] | None) -> None:
        import torch

        from sagelab.algorithms.ntm import network as net

        ctx, hp = self.ctx, self.hp
        topics = hp["num_topics"]
        layers = [3 * topics, 2 * topics] if hp["encoder_layers"] == AUTO else list(hp["encoder_layers"])
        settings = {"feature_dim": hp["feature_dim"], "num_topics": topics, "encoder_layers": layers,
                    "encoder_layers_activation": hp["encoder_layers_activation"], "batch_norm": hp["batch_norm"]}
        torch.manual_seed(SEED)
        generator = torch.Generator().manual_seed(SEED)
        model = net.build(settings)
        optimizer = self.optimizer(model.parameters())
        ctx.print(f"Encoder layers {layers} ({hp['encoder_layers_activation']}), {topics} topics, optimizer "
                  f"{hp['optimizer']}, {torch.get_num_threads()} threads.")

        best: tuple[float, dict[str, Any], int] | None = None
        since_best = 0
        throughput = onep.Throughput()
        seen = 0
        rows = x.shape[0]
        batch = hp["mini_batch_size"]
        for epoch in range(hp["epochs"]):
            model.train()
            order = torch.randperm(rows, generator=generator).numpy()
            if hp["sub_sample"] < 1.0:
                order = order[:max(1, int(math.ceil(rows * hp["sub_sample"])))]
            total = 0.0
            for start in range(0, len(order), batch):
                chunk = np.sort(order[start:start + batch])
                counts = torch.as_tensor(x[chunk].toarray())
                if hp["batch_norm"] and len(chunk) == 1:
                    continue  # batch normalization needs two documents
                reconstruction, kl = model.losses(counts, generator)
                loss = (reconstruction + kl).mean()
                optimizer.zero_grad()
                loss.backward()
                self.adjust_gradients(model)
                optimizer.step()
                total += float((reconstruction + kl).detach().sum())
            seen += len(order)
            train_loss = total / max(len(order), 1)
            if not math.isfinite(train_loss):
                raise DataError(f"Training diverged in epoch {epoch} (total_loss {train_loss}): lower learning_rate "
                                "or set clip_gradient.")
            onep.quality_metric(ctx, f"epoch={epoch}, train", "total_loss", train_loss)
            watched = train_loss
            if validation is not None:
                watched = self.evaluate(model, validation)[0]
                onep.quality_metric(ctx, f"epoch={epoch}, validation", "total_loss", watched)
            onep.progress_metric(ctx, epoch + 1, hp["epochs"])
            if best is None or watched < best[0] - hp["tolerance"] * abs(best[0]):
                best = (watched, {k: v.detach().clone() for k, v in model.state_dict().items()}, epoch)
                since_best = 0
            else:
                since_best += 1
                if since_best >= hp["num_patience_epochs"]:
                    ctx.print(f"Early stopping after epoch {epoch}: no improvement over {best[0]:.6f} (epoch "
                              f"{best[2]}) by more than tolerance={hp['tolerance']:g} in {since_best} epochs.")
                    break
        throughput.report(ctx, seen)
        assert best is not None
        model.load_state_dict(best[1])
        model.eval()
        ctx.print(f"Keeping the model of epoch {best[2]}.")
        for name, documents in (("train", x), ("validation", validation), ("test", test)):
            if documents is not None:
                loss, reconstruction, kl = self.evaluate(model, documents)
                onep.quality_metric(ctx, name, "total_loss", loss)
                onep.quality_metric(ctx, name, "recons_loss", reconstruction)
                onep.quality_metric(ctx, name, "kld", kl)
        if vocabulary is not None:
            weights = model.topic_word().numpy()
            for topic, row in enumerate(weights):
                top = np.argsort(-row, kind="stable")[:TOP_WORDS]
                ctx.print(f"[{topic}] " + " ".join(vocabulary[i] for i in top))
        net.save(model, {**settings, "trained_epochs": best[2] + 1}, ctx.model_dir)

    def evaluate(self, model: Any, documents: Any) -> tuple[float, float, float]:
        """Mean (total, reconstruction, KL) loss per document, at the encoder's mean (no sampling)."""
        import torch

        model.eval()
        sums = np.zeros(2)
        with torch.no_grad():
            for start in range(0, documents.shape[0], 4096):
                counts = torch.as_tensor(documents[start:start + 4096].toarray())
                reconstruction, kl = model.losses(counts, sample=False)
                sums += [float(reconstruction.sum()), float(kl.sum())]
        mean = sums / documents.shape[0]
        return float(mean.sum()), float(mean[0]), float(mean[1])

    def optimizer(self, parameters: Any) -> Any:
        import torch

        hp = self.hp
        name, lr, decay = hp["optimizer"], hp["learning_rate"], hp["weight_decay"]
        if name == "adadelta":
            return torch.optim.Adadelta(parameters, lr=1.0, rho=0.9, eps=1e-5, weight_decay=decay)
        kinds = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad,
                 "rmsprop": torch.optim.RMSprop}
        return kinds[name](parameters, lr=lr, weight_decay=decay)

    def adjust_gradients(self, model: Any) -> None:
        rescale, clip = self.hp["rescale_gradient"], self.hp["clip_gradient"]
        for parameter in model.parameters():
            if parameter.grad is None:
                continue
            if rescale != 1.0:
                parameter.grad.mul_(rescale)
            if math.isfinite(clip):
                parameter.grad.clamp_(-clip, clip)

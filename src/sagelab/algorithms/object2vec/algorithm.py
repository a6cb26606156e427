"""SageMaker's Object2Vec (`object2vec` images): a pair of sequence encoders and a comparator, trained with
PyTorch on JSON Lines pairs of token ids; see `object2vec.network` for the architecture.

How the documented hyperparameters map:
- enc0_*/enc1_*: each encoder's network, vocabulary, token embedding size, layers (auto = 2 for hcnn, 1
  otherwise), convolution width. enc1_network enc0 (the default) makes in1 go through the very same encoder.
  tied_token_embedding_weight shares the token embeddings of two different encoders.
- Pretrained token embeddings (enc*_pretrained_embedding_file, enc*_vocab_file, read by AWS from the
  auxiliary channel) are not supported: a non-empty value is refused when the job is created.
- output_layer softmax: cross-entropy over num_classes; mean_squared_error: regression on the label.
- negative_sampling_rate n: each epoch adds n pairs (label 0) per training pair, its in0 with a random in1.
- optimizer (learning_rate, weight_decay), mini_batch_size, dropout, epochs; early stopping on the
  validation loss: training stops when it has not improved by early_stopping_tolerance (relative) for
  early_stopping_patience epochs, keeping the best epoch's weights.
- bucket_width and token_embedding_storage_type are accepted and do not change the result.
- Seeded (torch generator 0): the same data and hyperparameters give the same model. Training uses every core
  from 100,000 training pairs, one thread below (`torch_threads`).

Metrics (1P format): `validation`/`test` `accuracy` <score> and `cross_entropy` <loss> (softmax),
`mean_squared_error` <loss> (regression), e.g. `#quality_metric: host=algo-1, validation accuracy <score>=0.97`;
per epoch also `#quality_metric: host=algo-1, epoch=3, train <loss name> <loss>=...`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import ChannelSpec, DataError, MetricDefinition, TrainingContext
from sagelab.algorithms.first_party import training as onep
from sagelab.algorithms.hyperparameters import AUTO
from sagelab.algorithms.object2vec.hyperparameters import SCHEMA
from sagelab.algorithms.object2vec.pairs import Pairs, read_pairs
from sagelab.algorithms.torch_threads import torch_threads

SEED = 0
#: training pairs from which torch uses every core (below: one thread, see torch_threads)
PARALLEL_PAIRS = 100_000
JSONLINES = "application/jsonlines"


def metric_definitions() -> tuple[MetricDefinition, ...]:
    out = [*onep.progress_and_throughput_metrics()]
    for channel in ("validation", "test"):
        out += [MetricDefinition(f"{channel}:accuracy", onep.quality_metric_regex(channel, "accuracy", "score"),
                                 "Maximize"),
                MetricDefinition(f"{channel}:cross_entropy", onep.quality_metric_regex(channel, "cross_entropy")),
                MetricDefinition(f"{channel}:mean_squared_error",
                                 onep.quality_metric_regex(channel, "mean_squared_error"))]
    return tuple(out)


def settings_for(hp: dict[str, Any]) -> dict[str, Any]:
    s = {key: hp[key] for key in SCHEMA.by_name() if not key.endswith(("_file",))}
    for side in ("enc0", "enc1"):
        network = hp["enc0_network"] if side == "enc1" and hp["enc1_network"] == "enc0" else hp[f"{side}_network"]
        if s[f"{side}_layers"] == AUTO:
            s[f"{side}_layers"] = 2 if network == "hcnn" else 1
    if hp["enc1_network"] == "enc0":
        for key in ("max_seq_len", "vocab_size", "token_embedding_dim", "layers", "cnn_filter_width"):
            s[f"enc1_{key}"] = s[f"enc0_{key}"]
    return s


class Object2Vec:
    name = "object2vec"
    image_repositories = ("object2vec",)
    hyperparameters = SCHEMA
    channels = (ChannelSpec("train", required=True, content_types=(JSONLINES,), default_content_type=JSONLINES),
                ChannelSpec("validation", content_types=(JSONLINES,), default_content_type=JSONLINES),
                ChannelSpec("test", content_types=(JSONLINES,), default_content_type=JSONLINES),
                ChannelSpec("auxiliary", content_types=("application/json", "text/plain"),
                            default_content_type="application/json"))
    metrics = metric_definitions()

    def train(self, ctx: TrainingContext) -> None:
        hp = SCHEMA.validate({key: value for key, value in ctx.hyperparameters.items() if value is not None})
        _Job(ctx, hp).run()

    def load(self, model_dir: Path) -> Any:
        from sagelab.algorithms.object2vec.predictor import Object2VecPredictor

        return Object2VecPredictor(Path(model_dir))


class _Job:
    def __init__(self, ctx: TrainingContext, hp: dict[str, Any]):
        self.ctx, self.hp = ctx, hp
        self.settings = settings_for(hp)
        self.softmax = hp["output_layer"] == "softmax"

    def read(self, name: str) -> Pairs | None:
        channel = self.ctx.channels.get(name)
        if channel is None:
            return None
        s = self.settings
        return read_pairs(name, channel.files, (s["enc0_vocab_size"], s["enc1_vocab_size"]),
                          self.hp["num_classes"] if self.softmax else None)

    def tensors(self, pairs: Pairs, rows: np.ndarray) -> tuple[Any, Any, Any]:
        import torch

        from sagelab.algorithms.object2vec.network import batch_ids

        s = self.settings
        in0 = batch_ids([pairs.in0[i] for i in rows], s["enc0_vocab_size"], s["enc0_max_seq_len"])
        in1 = batch_ids([pairs.in1[i] for i in rows], s["enc1_vocab_size"], s["enc1_max_seq_len"])
        labels = torch.tensor([pairs.labels[i] for i in rows],
                              dtype=torch.long if self.softmax else torch.float32)
        return in0, in1, labels

    def run(self) -> None:
        ctx = self.ctx
        started = time.perf_counter()
        train = self.read("train")
        assert train is not None
        validation, test = self.read("validation"), self.read("test")
        if "auxiliary" in ctx.channels:
            ctx.print("The auxiliary channel (pretrained embeddings) is not read: pretrained embeddings are not "
                      "supported.")
        ctx.print(f"Read {len(train)} training pairs in {time.perf_counter() - started:.3f} s.")
        with torch_threads(len(train) >= PARALLEL_PAIRS):
            self.fit(train, validation, test)

    def fit(self, train: Pairs, validation: Pairs | None, test: Pairs | None) -> None:
        import torch

        from sagelab.algorithms.object2vec import network as net

        ctx, hp = self.ctx, self.hp
        torch.manual_seed(SEED)
        generator = torch.Generator().manual_seed(SEED)
        model = net.Object2VecNet(self.settings)
        optimizer = self.optimizer(model.parameters())
        loss_name = "cross_entropy" if self.softmax else "mean_squared_error"
        best: tuple[float, dict[str, Any], int] | None = None
        waited = 0
        throughput = onep.Throughput()
        seen = 0
        for epoch in range(hp["epochs"]):
            model.train()
            epoch_pairs = self.with_negatives(train, generator)
            order = torch.randperm(len(epoch_pairs), generator=generator).numpy()
            total = 0.0
            for start in range(0, len(order), hp["mini_batch_size"]):
                in0, in1, labels = self.tensors(epoch_pairs, order[start:start + hp["mini_batch_size"]])
                loss = self.loss(model(in0, in1), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(labels)
            seen += len(order)
            train_loss = total / len(order)
            if not math.isfinite(train_loss):
                raise DataError(f"Training diverged in epoch {epoch} ({loss_name} {train_loss}): lower learning_rate.")
            onep.quality_metric(ctx, f"epoch={epoch}, train", loss_name, train_loss)
            watched = train_loss
            if validation is not None:
                watched = self.evaluate(model, validation)[loss_name]
                onep.quality_metric(ctx, f"epoch={epoch}, validation", loss_name, watched)
            onep.progress_metric(ctx, epoch + 1, hp["epochs"])
            if best is None or watched < best[0] * (1 - hp["early_stopping_tolerance"]):
                best, waited = (watched, {k: v.detach().clone() for k, v in model.state_dict().items()}, epoch), 0
            elif validation is not None:
                waited += 1
                if waited >= hp["early_stopping_patience"]:
                    ctx.print(f"Early stopping after epoch {epoch}: validation {loss_name} has not improved on "
                              f"{best[0]:.6f} (epoch {best[2]}) for {waited} epochs.")
                    break
        throughput.report(ctx, seen)
        assert best is not None
        model.load_state_dict(best[1])
        model.eval()
        for name, pairs in (("validation", validation), ("test", test)):
            if pairs is not None:
                for metric, value in self.evaluate(model, pairs).items():
                    onep.quality_metric(ctx, name, metric, value, "score" if metric == "accuracy" else "loss")
        net.save(model, ctx.model_dir, {"trained_epochs": best[2] + 1})

    def with_negatives(self, pairs: Pairs, generator: Any) -> Pairs:
        import torch

        rate = self.hp["negative_sampling_rate"]
        if not rate or not self.softmax:
            return pairs
        n = len(pairs)
        left = torch.arange(n).repeat(rate).numpy()
        right = torch.randint(0, n, (n * rate,), generator=generator).numpy()
        return Pairs(pairs.in0 + [pairs.in0[i] for i in left], pairs.in1 + [pairs.in1[j] for j in right],
                     pairs.labels + [0.0] * len(left))

    def loss(self, output: Any, labels: Any) -> Any:
        import torch

        if self.softmax:
            return torch.nn.functional.cross_entropy(output, labels)
        return torch.nn.functional.mse_loss(output[:, 0], labels)

    def evaluate(self, model: Any, pairs: Pairs) -> dict[str, float]:
        import torch

        model.eval()
        outputs, labels = [], []
        with torch.no_grad():
            for start in range(0, len(pairs), 1024):
                in0, in1, y = self.tensors(pairs, np.arange(start, min(start + 1024, len(pairs))))
                outputs.append(model(in0, in1))
                labels.append(y)
        output, label = torch.cat(outputs), torch.cat(labels)
        if self.softmax:
            return {"accuracy": float((output.argmax(1) == label).float().mean()),
                    "cross_entropy": float(torch.nn.functional.cross_entropy(output, label))}
        return {"mean_squared_error": float(torch.nn.functional.mse_loss(output[:, 0], label))}

    def optimizer(self, parameters: Any) -> Any:
        import torch

        hp = self.hp
        kinds = {"adam": torch.optim.Adam, "adagrad": torch.optim.Adagrad, "sgd": torch.optim.SGD,
                 "rmsprop": torch.optim.RMSprop, "adadelta": torch.optim.Adadelta}
        return kinds[hp["optimizer"]](parameters, lr=hp["learning_rate"], weight_decay=hp["weight_decay"])

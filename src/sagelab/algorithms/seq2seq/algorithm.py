"""SageMaker's Sequence-to-Sequence (`seq2seq` images): an RNN encoder-decoder with attention, trained with
PyTorch on recordIO-protobuf sentence pairs of token ids; see `seq2seq.network` for the architecture and
`seq2seq.data` for the channels.

How the documented hyperparameters map:
- Architecture: encoder_type rnn or cnn (a convolutional encoder under the rnn decoder); decoder_type cnn is
  refused when the job is created (no convolutional decoder). rnn_cell_type, rnn_num_hidden, num_layers_*,
  num_embed_*, rnn_attention_type (dot, fixed, mlp, bilinear), rnn_attention_num_hidden, rnn_decoder_state_init,
  rnn_residual_connections / rnn_first_residual_layer, cnn_*, the dropouts, weight_init_*: as `network` says.
  rnn_attention_in_upper_layers is accepted and changes nothing: attention is computed once, over the top
  decoder layer (no input feeding), so that teacher forcing runs each layer over the whole sentence at once.
- Data: max_seq_len_source/target truncate longer sentences (the log says how many); batch_size sentences per
  update; bucketing_enabled groups sentences whose longer side falls in the same bucket_width-wide bucket
  (batches are shuffled, seeded, every epoch).
- Training: teacher forcing, cross-entropy (loss_type) over the target tokens and `</s>`; optimizer_type adam,
  sgd (momentum) or rmsprop with learning_rate and weight_decay; clip_gradient clips each gradient value to
  +-clip_gradient (negative: no clipping).
- Checkpoints: every checkpoint_frequency_num_batches updates (and once at the end) the validation channel is
  scored: perplexity, accuracy (of the next token under teacher forcing) and, when bleu_sample_size is not 0 or
  optimized_metric is bleu, BLEU. The best checkpoint by optimized_metric is the model kept; training stops after
  checkpoint_threshold checkpoints without improvement, at max_num_batches updates, or after max_num_epochs.
  With optimized_metric bleu, bleu_sample_size 0 means the whole validation set (as -1 does).
- lr_scheduler_type: plateau_reduce multiplies the rate by plateau_reduce_lr_factor after
  plateau_reduce_lr_threshold checkpoints without improvement; fixed_rate_inv_t uses lr / (1 + t / half_life) and
  fixed_rate_inv_sqrt_t lr / sqrt(1 + 3 t / half_life) (both halve it at t = fixed_rate_lr_half_life
  checkpoints, t counted in checkpoints, fractionally between them).
- beam_size: the beam of the BLEU decoding and of inference. training_metric names the train metric logged at
  each checkpoint.
- SageMaker runs seq2seq on GPUs only; sagelab trains on the CPU (PyTorch): toy sizes only. Seeded (torch
  generator 0): the same data and hyperparameters give the same model. Training uses every core from 100,000
  training sentences, one thread below (`torch_threads`).

BLEU is sacrebleu's corpus BLEU (default 13a tokenization) of the beam-search translations of the sample against
their references, divided by 100 (so in [0, 1], as Sockeye reports it).

Metrics (1P format) of the kept checkpoint: `#quality_metric: host=algo-1, validation perplexity <loss>=...`,
`validation accuracy <score>=...`, `validation bleu <score>=...`; each checkpoint also logs
`#quality_metric: host=algo-1, checkpoint=3, validation perplexity <loss>=...` and the train metric.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.base import ChannelSpec, DataError, MetricDefinition, TrainingContext
from sagelab.algorithms.first_party import training as onep
from sagelab.algorithms.seq2seq import data as s2s
from sagelab.algorithms.seq2seq.hyperparameters import SCHEMA
from sagelab.algorithms.torch_threads import torch_threads

SEED = 0
#: training sentences from which torch uses every core (below: one thread, see torch_threads)
PARALLEL_SENTENCES = 100_000
PROTOBUF = "application/x-recordio-protobuf"
#: the settings the network and the predictor need (the rest only steer training)
ARCHITECTURE = ("max_seq_len_source", "max_seq_len_target", "encoder_type", "num_layers_encoder",
                "num_layers_decoder", "rnn_num_hidden", "rnn_cell_type", "rnn_decoder_state_init",
                "rnn_residual_connections", "rnn_first_residual_layer", "cnn_kernel_width_encoder", "cnn_num_hidden",
                "cnn_activation_type", "cnn_hidden_dropout", "num_embed_source", "num_embed_target",
                "embed_dropout_source", "embed_dropout_target", "rnn_attention_type", "rnn_attention_num_hidden",
                "rnn_decoder_hidden_dropout", "weight_init_type", "weight_init_scale", "xavier_factor_type",
                "beam_size")
#: how each validation metric improves
MAXIMIZED = {"perplexity": False, "accuracy": True, "bleu": True}


def metric_definitions() -> tuple[MetricDefinition, ...]:
    return (*onep.progress_and_throughput_metrics(),
            MetricDefinition("validation:accuracy", onep.quality_metric_regex("validation", "accuracy", "score"),
                             "Maximize"),
            MetricDefinition("validation:bleu", onep.quality_metric_regex("validation", "bleu", "score"), "Maximize"),
            MetricDefinition("validation:perplexity", onep.quality_metric_regex("validation", "perplexity"),
                             "Minimize"))


class Seq2Seq:
    name = "seq2seq"
    image_repositories = ("seq2seq",)
    hyperparameters = SCHEMA
    channels = (ChannelSpec("train", required=True, content_types=(PROTOBUF,), default_content_type=PROTOBUF),
                ChannelSpec("validation", required=True, content_types=(PROTOBUF,), default_content_type=PROTOBUF),
                ChannelSpec("vocab", required=True, content_types=("application/json", "text/plain", PROTOBUF),
                            default_content_type="application/json"))
    metrics = metric_definitions()

    def train(self, ctx: TrainingContext) -> None:
        hp = SCHEMA.validate({key: value for key, value in ctx.hyperparameters.items() if value is not None})
        _Job(ctx, hp).run()

    def load(self, model_dir: Path) -> Any:
        from sagelab.algorithms.seq2seq.predictor import Seq2SeqPredictor

        return Seq2SeqPredictor(Path(model_dir))


class _Job:
    def __init__(self, ctx: TrainingContext, hp: dict[str, Any]):
        self.ctx, self.hp = ctx, hp

    def run(self) -> None:
        ctx, hp = self.ctx, self.hp
        started = time.perf_counter()
        for name in ("train", "validation", "vocab"):
            if name not in ctx.channels or not ctx.channels[name].files:
                raise DataError(f"Channel '{name}' holds no data; seq2seq needs the train, validation and vocab "
                                "channels.")
        self.source_vocab, self.target_vocab = s2s.read_vocabs(ctx.channels["vocab"].files)
        limits = (hp["max_seq_len_source"], hp["max_seq_len_target"])
        train = s2s.read_pairs("train", ctx.channels["train"].files, self.source_vocab, self.target_vocab, *limits)
        validation = s2s.read_pairs("validation", ctx.channels["validation"].files, self.source_vocab,
                                    self.target_vocab, *limits)
        ctx.print(f"Read {len(train)} training and {len(validation)} validation sentence pairs in "
                  f"{time.perf_counter() - started:.3f} s; source vocabulary {self.source_vocab.size}, target "
                  f"vocabulary {self.target_vocab.size} tokens.")
        for name, pairs in (("train", train), ("validation", validation)):
            if pairs.truncated:
                ctx.print(f"Channel '{name}': {pairs.truncated} sentence pair(s) longer than max_seq_len_source "
                          f"{limits[0]} / max_seq_len_target {limits[1]} were truncated.")
        with torch_threads(len(train) >= PARALLEL_SENTENCES):
            self.fit(train, validation)

    # -- batches --------------------------------------------------------------------------------------------------

    def batches(self, pairs: s2s.Pairs, generator: Any) -> list[np.ndarray]:
        import torch

        hp = self.hp
        size = hp["batch_size"]
        order = torch.randperm(len(pairs), generator=generator).numpy()
        if hp["bucketing_enabled"]:
            longest = np.array([max(len(pairs.sources[i]), len(pairs.targets[i]) + 1) for i in order])
            buckets = (longest - 1) // hp["bucket_width"]
            order = order[np.argsort(buckets, kind="stable")]
        out = [order[start:start + size] for start in range(0, len(order), size)]
        shuffle = torch.randperm(len(out), generator=generator).numpy()
        return [out[i] for i in shuffle]

    @staticmethod
    def tensors(pairs: s2s.Pairs, rows: np.ndarray) -> tuple[Any, Any, Any]:
        """(source (B, S), decoder input `<s>` + target (B, T), expected output target + `</s>` (B, T))."""
        import torch

        sources = [pairs.sources[i] for i in rows]
        targets = [pairs.targets[i] for i in rows]
        source = torch.zeros(len(rows), max(map(len, sources)), dtype=torch.long)
        steps = max(map(len, targets)) + 1
        target_in = torch.zeros(len(rows), steps, dtype=torch.long)
        target_out = torch.zeros(len(rows), steps, dtype=torch.long)
        for k, (src, trg) in enumerate(zip(sources, targets, strict=True)):
            source[k, :len(src)] = torch.tensor(src)
            target_in[k, :len(trg) + 1] = torch.tensor([s2s.BOS_ID, *trg])
            target_out[k, :len(trg) + 1] = torch.tensor([*trg, s2s.EOS_ID])
        return source, target_in, target_out

    # -- training -------------------------------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        s = {key: self.hp[key] for key in ARCHITECTURE}
        s["source_vocab_size"], s["target_vocab_size"] = self.source_vocab.size, self.target_vocab.size
        return s

    def optimizer(self, parameters: Any) -> Any:
        import torch

        hp = self.hp
        if hp["optimizer_type"] == "sgd":
            return torch.optim.SGD(parameters, lr=hp["learning_rate"], momentum=hp["momentum"] or 0.0,
                                   weight_decay=hp["weight_decay"])
        kind = torch.optim.Adam if hp["optimizer_type"] == "adam" else torch.optim.RMSprop
        return kind(parameters, lr=hp["learning_rate"], weight_decay=hp["weight_decay"])

    def fit(self, train: s2s.Pairs, validation: s2s.Pairs) -> None:
        import torch

        from sagelab.algorithms.seq2seq import network as net

        ctx, hp = self.ctx, self.hp
        torch.manual_seed(SEED)
        generator = torch.Generator().manual_seed(SEED)
        model = net.Seq2SeqNet(self.settings())
        optimizer = self.optimizer(model.parameters())
        watched = hp["optimized_metric"]
        sign = -1.0 if MAXIMIZED[watched] else 1.0
        frequency, limit = hp["checkpoint_frequency_num_batches"], hp["max_num_batches"]
        best: tuple[float, dict[str, float], dict[str, Any], int] | None = None
        since_best = since_reduce = 0
        checkpoint = updates = epoch = seen = 0
        running_loss = running_correct = running_tokens = 0.0
        throughput = onep.Throughput()
        stop = False
        while not stop:
            if hp["max_num_epochs"] is not None and epoch >= hp["max_num_epochs"]:
                break
            model.train()
            for rows in self.batches(train, generator):
                source, target_in, target_out = self.tensors(train, rows)
                logits = model(source, target_in)
                mask = target_out != s2s.PAD_ID
                loss = torch.nn.functional.cross_entropy(logits[mask], target_out[mask])
                optimizer.zero_grad()
                loss.backward()
                if hp["clip_gradient"] >= 0:
                    torch.nn.utils.clip_grad_value_(model.parameters(), hp["clip_gradient"])
                optimizer.step()
                updates += 1
                seen += len(rows)
                tokens = float(mask.sum())
                running_loss += float(loss.detach()) * tokens
                running_correct += float((logits.detach().argmax(-1) == target_out)[mask].sum())
                running_tokens += tokens
                if not math.isfinite(running_loss):
                    raise DataError(f"Training diverged after {updates} batches (cross-entropy {float(loss)}): "
                                    "lower learning_rate.")
                self.schedule(optimizer, updates / frequency)
                at_limit = limit != -1 and updates >= limit
                if updates % frequency == 0 or at_limit:
                    checkpoint += 1
                    scores = self.checkpoint(model, validation, checkpoint, running_loss, running_correct,
                                             running_tokens)
                    running_loss = running_correct = running_tokens = 0.0
                    if limit != -1:
                        onep.progress_metric(ctx, updates, limit)
                    value = sign * scores[watched]
                    if best is None or value < best[0]:
                        best = (value, scores, {k: v.detach().clone() for k, v in model.state_dict().items()},
                                checkpoint)
                        since_best = since_reduce = 0
                    else:
                        since_best += 1
                        since_reduce += 1
                        if hp["lr_scheduler_type"] == "plateau_reduce" and \
                                since_reduce >= hp["plateau_reduce_lr_threshold"]:
                            since_reduce = 0
                            for group in optimizer.param_groups:
                                group["lr"] *= hp["plateau_reduce_lr_factor"]
                            ctx.print(f"Checkpoint {checkpoint}: validation {watched} has not improved for "
                                      f"{hp['plateau_reduce_lr_threshold']} checkpoints; learning rate now "
                                      f"{optimizer.param_groups[0]['lr']:.3g}.")
                        if since_best >= hp["checkpoint_threshold"]:
                            ctx.print(f"Stopping after checkpoint {checkpoint}: validation {watched} has not "
                                      f"improved on checkpoint {best[3]} for {since_best} checkpoints.")
                            stop = True
                    model.train()
                if stop or at_limit:
                    stop = True
                    break
            epoch += 1
            if hp["max_num_epochs"] is not None:
                onep.progress_metric(ctx, epoch, hp["max_num_epochs"])
        if running_tokens or best is None:  # the updates since the last checkpoint are scored too
            checkpoint += 1
            scores = self.checkpoint(model, validation, checkpoint, running_loss, running_correct, running_tokens)
            if best is None or sign * scores[watched] < best[0]:
                best = (sign * scores[watched], scores, {k: v.detach().clone() for k, v in model.state_dict().items()},
                        checkpoint)
        throughput.report(ctx, seen)
        assert best is not None
        _, scores, weights, kept = best
        ctx.print(f"Keeping checkpoint {kept} of {checkpoint} (best validation {watched}) after {updates} batches, "
                  f"{epoch} epoch(s).")
        for metric, value in scores.items():
            onep.quality_metric(ctx, "validation", metric, value, "loss" if metric == "perplexity" else "score")
        model.load_state_dict(weights)
        vocab_texts = {name: path.read_text(encoding="utf-8") for path in self.ctx.channels["vocab"].files
                       if (name := s2s.file_name(path)) in (s2s.SOURCE_VOCAB, s2s.TARGET_VOCAB)}
        net.save(model, ctx.model_dir, {"kept_checkpoint": kept, "updates": updates}, vocab_texts)

    def schedule(self, optimizer: Any, t: float) -> None:
        hp = self.hp
        kind, half_life = hp["lr_scheduler_type"], hp["fixed_rate_lr_half_life"]
        if kind == "plateau_reduce":
            return
        factor = 1 + t / half_life if kind == "fixed_rate_inv_t" else math.sqrt(1 + 3 * t / half_life)
        for group in optimizer.param_groups:
            group["lr"] = hp["learning_rate"] / factor

    def checkpoint(self, model: Any, validation: s2s.Pairs, number: int, loss: float, correct: float,
                   tokens: float) -> dict[str, float]:
        ctx = self.ctx
        scores = self.evaluate(model, validation)
        if tokens:
            train = math.exp(min(loss / tokens, 700.0)) if self.hp["training_metric"] == "perplexity" \
                else correct / tokens
            onep.quality_metric(ctx, f"checkpoint={number}, train", self.hp["training_metric"], train,
                                "loss" if self.hp["training_metric"] == "perplexity" else "score")
        for metric, value in scores.items():
            onep.quality_metric(ctx, f"checkpoint={number}, validation", metric, value,
                                "loss" if metric == "perplexity" else "score")
        return scores

    def evaluate(self, model: Any, pairs: s2s.Pairs) -> dict[str, float]:
        import torch

        model.eval()
        total = correct = tokens = 0.0
        with torch.no_grad():
            for start in range(0, len(pairs), 256):
                rows = np.arange(start, min(start + 256, len(pairs)))
                source, target_in, target_out = self.tensors(pairs, rows)
                logits = model(source, target_in)
                mask = target_out != s2s.PAD_ID
                total += float(torch.nn.functional.cross_entropy(logits[mask], target_out[mask], reduction="sum"))
                correct += float((logits.argmax(-1) == target_out)[mask].sum())
                tokens += float(mask.sum())
        scores = {"perplexity": math.exp(min(total / tokens, 700.0)), "accuracy": correct / tokens}
        sample = self.hp["bleu_sample_size"]
        if sample != 0 or self.hp["optimized_metric"] == "bleu":
            scores["bleu"] = self.bleu(model, pairs, len(pairs) if sample <= 0 else min(sample, len(pairs)))
        return scores

    def bleu(self, model: Any, pairs: s2s.Pairs, count: int) -> float:
        import sacrebleu
        import torch

        from sagelab.algorithms.seq2seq import network as net

        rows = np.arange(len(pairs)) if count >= len(pairs) else np.sort(
            torch.randperm(len(pairs), generator=torch.Generator().manual_seed(SEED)).numpy()[:count])
        hypotheses = []
        for start in range(0, len(rows), net.BEAM_BATCH):
            chunk = [pairs.sources[i] for i in rows[start:start + net.BEAM_BATCH]]
            hypotheses += [self.target_vocab.sentence(ids) for ids, _ in
                           model.beam_search(chunk, self.hp["beam_size"], self.hp["max_seq_len_target"])]
        references = [self.target_vocab.sentence(pairs.targets[i]) for i in rows]
        return min(float(sacrebleu.corpus_bleu(hypotheses, [references]).score) / 100.0, 1.0)

"""Seq2Seq's network, beam search and artifact.

Encoder (source ids, `<pad>`=0 masked):
- rnn: token embeddings (num_embed_source), a bidirectional first layer (rnn_num_hidden / 2 per direction,
  hence an even rnn_num_hidden) and num_layers_encoder - 1 unidirectional layers on top (Bahdanau et al.);
- cnn: token plus position embeddings, num_layers_encoder 1-D convolutions of cnn_num_hidden channels
  (cnn_kernel_width_encoder, cnn_activation_type, residual, cnn_hidden_dropout; Gehring et al.'s encoder), then
  a projection to rnn_num_hidden for the rnn decoder.
Decoder: target embeddings (num_embed_target) through num_layers_decoder RNN layers (rnn_cell_type), started
from the encoder (rnn_decoder_state_init: last = the state at the last source token, avg = the mean state, each
through a tanh layer; zero); then attention over the encoder states, the attentional hidden state
tanh(W [decoder state; context]) (rnn_decoder_hidden_dropout) and the output layer over the target vocabulary.
Attention (rnn_attention_type, Luong et al.'s names): dot s.h; bilinear s W h ("general"); mlp
v tanh(W s + U h) with rnn_attention_num_hidden ("concat"); fixed: the same weight on every source token.
rnn_residual_connections adds each layer's input to its output from rnn_first_residual_layer on (when the widths
match). Weights start as weight_init_type says: xavier = uniform(+-sqrt(weight_init_scale / fan)) with
xavier_factor_type's fan (in, out or their average), uniform = uniform(+-weight_init_scale); biases zero.

Beam search keeps beam_size hypotheses, never proposes `<pad>` or `<s>`, ends a hypothesis at `</s>`, and
ranks finished ones by log-probability divided by length; at most max_seq_len_target tokens are produced. The
sentences of a request (BEAM_BATCH at a time) are searched together, each as it would be alone.

Artifact: `model.pt` (`state_dict`, read with `torch.load(weights_only=True)`), `model.json` (settings) and the
two vocabularies as trained (`vocab.src.json`, `vocab.trg.json`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from sagelab.algorithms import torch_artifact
from sagelab.algorithms.seq2seq.data import BOS_ID, EOS_ID, PAD_ID

FORMAT = "sagelab-seq2seq/1"
_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}
#: sentences searched together by beam search (for BLEU and at inference)
BEAM_BATCH = 64


def _residual_from(s: dict[str, Any]) -> int | None:
    return s["rnn_first_residual_layer"] if s["rnn_residual_connections"] else None


class RNNEncoder(nn.Module):
    def __init__(self, s: dict[str, Any]):
        super().__init__()
        cell, hidden = _CELLS[s["rnn_cell_type"]], s["rnn_num_hidden"]
        self.first = cell(s["num_embed_source"], hidden // 2, batch_first=True, bidirectional=True)
        self.upper = nn.ModuleList(cell(hidden, hidden, batch_first=True)
                                   for _ in range(s["num_layers_encoder"] - 1))
        self.residual_from = _residual_from(s)

    def forward(self, embedded: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.first(packed)
        x, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=embedded.shape[1])
        for number, layer in enumerate(self.upper, start=2):
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, _ = layer(packed)
            y, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=embedded.shape[1])
            x = x + y if self.residual_from is not None and number >= self.residual_from else y
        return x


class CNNEncoder(nn.Module):
    def __init__(self, s: dict[str, Any]):
        super().__init__()
        channels, width = s["cnn_num_hidden"], s["cnn_kernel_width_encoder"]
        self.activation = s["cnn_activation_type"]
        self.positions = nn.Embedding(s["max_seq_len_source"], s["num_embed_source"])
        self.into = nn.Linear(s["num_embed_source"], channels)
        grow = 2 if self.activation == "glu" else 1
        self.convolutions = nn.ModuleList(nn.Conv1d(channels, grow * channels, width, padding=width // 2)
                                          for _ in range(s["num_layers_encoder"]))
        self.dropout = nn.Dropout(s["cnn_hidden_dropout"])
        self.out = nn.Linear(channels, s["rnn_num_hidden"])

    def _activate(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation == "glu":
            return F.glu(x, dim=1)
        return {"relu": F.relu, "softrelu": F.softplus, "sigmoid": torch.sigmoid, "tanh": torch.tanh}[
            self.activation](x)

    def forward(self, embedded: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        steps = embedded.shape[1]
        x = self.into(embedded + self.positions(torch.arange(steps, device=embedded.device))[None])
        keep = mask[:, None, :].to(x.dtype)
        x = x.transpose(1, 2) * keep
        for convolution in self.convolutions:
            y = self._activate(convolution(self.dropout(x))[:, :, :steps])
            x = (x + y) * keep
        return self.out(x.transpose(1, 2))


class Attention(nn.Module):
    def __init__(self, s: dict[str, Any]):
        super().__init__()
        self.kind, hidden = s["rnn_attention_type"], s["rnn_num_hidden"]
        if self.kind == "bilinear":
            self.weight = nn.Linear(hidden, hidden, bias=False)
        elif self.kind == "mlp":
            inner = hidden if s["rnn_attention_num_hidden"] == "auto" else s["rnn_attention_num_hidden"]
            self.query = nn.Linear(hidden, inner, bias=False)
            self.key = nn.Linear(hidden, inner)
            self.score = nn.Linear(inner, 1, bias=False)

    def forward(self, queries: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """queries (B, T, H), keys (B, S, H), mask (B, S) -> weights (B, T, S)."""
        if self.kind == "dot":
            scores = queries @ keys.transpose(1, 2)
        elif self.kind == "bilinear":
            scores = self.weight(queries) @ keys.transpose(1, 2)
        elif self.kind == "mlp":
            scores = self.score(torch.tanh(self.query(queries)[:, :, None, :] + self.key(keys)[:, None, :, :]))[..., 0]
        else:  # fixed: every source token weighs the same
            scores = queries.new_zeros(queries.shape[0], queries.shape[1], keys.shape[1])
        scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
        return torch.softmax(scores, dim=-1)


class Seq2SeqNet(nn.Module):
    def __init__(self, settings: dict[str, Any]):
        super().__init__()
        s = self.settings = dict(settings)
        hidden = s["rnn_num_hidden"]
        self.source_embedding = nn.Embedding(s["source_vocab_size"], s["num_embed_source"], padding_idx=PAD_ID)
        self.target_embedding = nn.Embedding(s["target_vocab_size"], s["num_embed_target"], padding_idx=PAD_ID)
        self.source_dropout = nn.Dropout(s["embed_dropout_source"])
        self.target_dropout = nn.Dropout(s["embed_dropout_target"])
        self.encoder = RNNEncoder(s) if s["encoder_type"] == "rnn" else CNNEncoder(s)
        cell = _CELLS[s["rnn_cell_type"]]
        self.lstm = s["rnn_cell_type"] == "lstm"
        self.decoder = nn.ModuleList(cell(s["num_embed_target"] if i == 0 else hidden, hidden, batch_first=True)
                                     for i in range(s["num_layers_decoder"]))
        self.residual_from = _residual_from(s)
        self.state_init = s["rnn_decoder_state_init"]
        if self.state_init != "zero":
            self.init_layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in self.decoder)
        self.attention = Attention(s)
        self.combine = nn.Linear(2 * hidden, hidden)
        self.hidden_dropout = nn.Dropout(s["rnn_decoder_hidden_dropout"])
        self.output = nn.Linear(hidden, s["target_vocab_size"])
        self._initialize(s)

    def _initialize(self, s: dict[str, Any]) -> None:
        generator = torch.Generator().manual_seed(0)
        for name, parameter in self.named_parameters():
            with torch.no_grad():
                if parameter.dim() < 2:
                    parameter.zero_()
                    continue
                if s["weight_init_type"] == "uniform":
                    bound = s["weight_init_scale"]
                else:
                    receptive = math.prod(parameter.shape[2:])
                    fan_in, fan_out = parameter.shape[1] * receptive, parameter.shape[0] * receptive
                    fan = {"in": fan_in, "out": fan_out, "avg": (fan_in + fan_out) / 2}[s["xavier_factor_type"]]
                    bound = math.sqrt(s["weight_init_scale"] / fan)
                parameter.copy_(torch.rand(parameter.shape, generator=generator) * 2 * bound - bound)
                if name.endswith("_embedding.weight"):
                    parameter[PAD_ID] = 0.0

    # -- encoder ------------------------------------------------------------------------------------------------

    def encode(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
        """source (B, S) -> encoder states (B, S, H), mask (B, S), the decoder's first states."""
        mask = source != PAD_ID
        lengths = mask.sum(1).clamp(min=1)
        embedded = self.source_dropout(self.source_embedding(source))
        states = self.encoder(embedded, lengths) if isinstance(self.encoder, RNNEncoder) else \
            self.encoder(embedded, mask)
        return states, mask, self._first_states(states, mask, lengths)

    def _first_states(self, states: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> list[Any]:
        batch, hidden = states.shape[0], states.shape[2]
        if self.state_init == "zero":
            summary = None
        elif self.state_init == "last":
            summary = states[torch.arange(batch), lengths - 1]
        else:
            weights = mask.to(states.dtype)[:, :, None]
            summary = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        out = []
        for i in range(len(self.decoder)):
            h = states.new_zeros(1, batch, hidden) if summary is None else torch.tanh(self.init_layers[i](summary))[None]
            out.append((h, torch.zeros_like(h)) if self.lstm else h)
        return out

    # -- decoder ------------------------------------------------------------------------------------------------

    def _decode(self, tokens: torch.Tensor, layer_states: list[Any], states: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[Any]]:
        x = self.target_dropout(self.target_embedding(tokens))
        new_states = []
        for number, (layer, state) in enumerate(zip(self.decoder, layer_states, strict=True), start=1):
            y, state = layer(x, state)
            new_states.append(state)
            residual = self.residual_from is not None and number >= self.residual_from and y.shape == x.shape
            x = x + y if residual else y
        weights = self.attention(x, states, mask)
        context = weights @ states
        attentional = self.hidden_dropout(torch.tanh(self.combine(torch.cat([x, context], dim=-1))))
        return self.output(attentional), weights, new_states

    def forward(self, source: torch.Tensor, target_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits (B, T, V) for each position of target_in (which starts with `<s>`)."""
        states, mask, first = self.encode(source)
        logits, _, _ = self._decode(target_in, first, states, mask)
        return logits

    @torch.no_grad()
    def beam_search(self, sources: list[list[int]], beam: int,
                    max_length: int) -> list[tuple[list[int], list[list[float]]]]:
        """For each source sentence, the best target ids (without `</s>`) and its attention rows (one per target
        token, one weight per source token). The sentences are searched together, `beam` hypotheses each."""
        batch, vocab = len(sources), self.settings["target_vocab_size"]
        source = torch.zeros(batch, max(map(len, sources)), dtype=torch.long)
        for i, ids in enumerate(sources):
            source[i, :len(ids)] = torch.tensor(ids)
        states, mask, layer_states = self.encode(source)
        states, mask = states.repeat_interleave(beam, 0), mask.repeat_interleave(beam, 0)
        layer_states = [tuple(t.repeat_interleave(beam, 1) for t in st) if isinstance(st, tuple)
                        else st.repeat_interleave(beam, 1) for st in layer_states]
        # Only the first hypothesis of each sentence is alive at the start; the others score -inf.
        scores = torch.full((batch, beam), float("-inf"))
        scores[:, 0] = 0.0
        tokens = torch.full((batch * beam,), BOS_ID, dtype=torch.long)
        history = torch.zeros(batch * beam, 0, dtype=torch.long)
        attention = torch.zeros(batch * beam, 0, states.shape[1])
        finished: list[list[tuple[float, list[int], torch.Tensor]]] = [[] for _ in range(batch)]
        done = [False] * batch
        for step in range(max_length):
            logits, weights, layer_states = self._decode(tokens[:, None], layer_states, states, mask)
            logp = torch.log_softmax(logits[:, 0], dim=-1)
            logp[:, PAD_ID] = float("-inf")
            logp[:, BOS_ID] = float("-inf")
            total = (scores.reshape(-1, 1) + logp).reshape(batch, beam * vocab)
            top = torch.topk(total, min(2 * beam, beam * vocab), dim=1)
            parents = torch.arange(batch * beam)
            new_tokens = torch.full((batch * beam,), PAD_ID, dtype=torch.long)
            new_scores = torch.full((batch, beam), float("-inf"))
            weights = weights[:, 0]
            for b in range(batch):
                if done[b]:
                    continue
                chosen = 0
                for value, flat in zip(top.values[b].tolist(), top.indices[b].tolist(), strict=True):
                    if value == float("-inf"):
                        break
                    parent, token = divmod(flat, vocab)
                    row = b * beam + parent
                    if token == EOS_ID:
                        rows = torch.cat([attention[row], weights[row][None]])
                        finished[b].append((value / (step + 1), history[row].tolist(), rows))
                    elif chosen < beam:
                        parents[b * beam + chosen], new_tokens[b * beam + chosen] = row, token
                        new_scores[b, chosen] = value
                        chosen += 1
                if len(finished[b]) >= beam or not chosen:
                    done[b] = True
                    new_scores[b] = float("-inf")
            if all(done):
                break
            scores, tokens = new_scores, new_tokens
            history = torch.cat([history[parents], tokens[:, None]], dim=1)
            attention = torch.cat([attention[parents], weights[parents][:, None]], dim=1)
            layer_states = [tuple(t[:, parents] for t in st) if isinstance(st, tuple) else st[:, parents]
                            for st in layer_states]
        out = []
        for b, ids in enumerate(sources):
            candidates = finished[b] or [(float(scores[b, k]) / max(history.shape[1], 1),
                                          history[b * beam + k].tolist(), attention[b * beam + k])
                                         for k in range(beam) if scores[b, k] > float("-inf")]
            _, best, rows = max(candidates, key=lambda item: item[0])
            out.append((best, rows[:len(best), :len(ids)].tolist()))
        return out


def save(net: Seq2SeqNet, model_dir: Path, extra: dict[str, Any], vocab_texts: dict[str, str]) -> None:
    torch_artifact.save(model_dir, net.state_dict(), {**net.settings, **extra}, model_format=FORMAT)
    for name, text in vocab_texts.items():
        (model_dir / name).write_text(text, encoding="utf-8")


def load(model_dir: Path) -> Seq2SeqNet:
    settings, state = torch_artifact.read(model_dir, model_format=FORMAT, what="Seq2Seq")
    net = Seq2SeqNet(settings)
    net.load_state_dict(state)
    net.eval()
    return net

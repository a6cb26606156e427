"""DeepAR's network, its training windows, its sampled forecasts, and its artifact.

The network (Salinas et al., "DeepAR") is an LSTM over time points. At point t its input is the series'
lagged values (`lags`, divided by the series' scale), calendar features of t, the dynamic features at t, the
embeddings of the series' categories and log(scale); its output parametrizes the likelihood of the value at
t. Training maximizes that likelihood over random windows of context_length + prediction_length points
(teacher forcing; missing values are masked out of the loss and fed as 0). Forecasts run the LSTM over the
last context_length points, then sample prediction_length points ahead, each sample fed back as the next
input: `num_samples` sample paths, from which the mean and the quantiles are read.

The scale of a window is 1 + the mean absolute observed value of its context (none for `beta`, whose values
live in (0, 1)); negative-binomial scales its mean by it and its dispersion by 1/sqrt(scale), as the paper.

Artifact: `model.pt` (the `state_dict`, read with `torch.load(weights_only=True)`) and `model.json` (settings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sagelab.algorithms import torch_artifact
from sagelab.algorithms.deepar.series import Series, time_features

FORMAT = "sagelab-deepar/1"
PARAMETERS = {"gaussian": 2, "student-T": 3, "negative-binomial": 2, "beta": 2, "deterministic-L1": 1}


class DeepARNet(nn.Module):
    def __init__(self, settings: dict[str, Any]):
        super().__init__()
        self.settings = settings
        self.lags: list[int] = list(settings["lags"])
        self.embeddings = nn.ModuleList(nn.Embedding(c, settings["embedding_dimension"])
                                        for c in settings["cardinality"])
        size = (len(self.lags) + settings["num_time_features"] + settings["num_dynamic_feat"]
                + len(settings["cardinality"]) * settings["embedding_dimension"] + 1)
        layers = settings["num_layers"]
        self.rnn = nn.LSTM(size, settings["num_cells"], layers, batch_first=True,
                           dropout=settings["dropout_rate"] if layers > 1 else 0.0)
        self.head = nn.Linear(settings["num_cells"], PARAMETERS[settings["likelihood"]])

    @property
    def history(self) -> int:
        return max(self.lags)

    def features(self, values: torch.Tensor, covariates: torch.Tensor, cats: torch.Tensor, log_scale: torch.Tensor,
                 first: int, count: int) -> torch.Tensor:
        """Inputs (B, count, size) for window points first..first+count-1. `values` (B, history + window) are
        scaled with missing values as 0; `covariates` (B, features, window) are the calendar and dynamic features."""
        h = self.history
        positions = torch.arange(first, first + count)
        lagged = torch.stack([values[:, h + positions - lag] for lag in self.lags], dim=2)
        parts = [lagged, covariates[:, :, first:first + count].transpose(1, 2)]
        static = [log_scale]
        static += [embedding(cats[:, i]) for i, embedding in enumerate(self.embeddings)]
        static_all = torch.cat(static, dim=1)
        parts.append(static_all[:, None, :].expand(-1, count, -1))
        return torch.cat(parts, dim=2)

    def distribution(self, output: torch.Tensor, scale: torch.Tensor) -> Any:
        """The likelihood of each point from the head's output (B, T, params); `scale` (B, 1)."""
        kind = self.settings["likelihood"]
        p = self.head(output)
        scale = scale[:, :, None] if scale.dim() == 2 else scale
        positive = nn.functional.softplus
        if kind == "gaussian":
            return torch.distributions.Normal(p[..., 0] * scale[..., 0], (positive(p[..., 1]) + 1e-4) * scale[..., 0])
        if kind == "student-T":
            return torch.distributions.StudentT(2.0 + positive(p[..., 2]), p[..., 0] * scale[..., 0],
                                                (positive(p[..., 1]) + 1e-4) * scale[..., 0])
        if kind == "negative-binomial":
            mean = (positive(p[..., 0]) + 1e-4) * scale[..., 0]
            alpha = (positive(p[..., 1]) + 1e-4) / torch.sqrt(scale[..., 0])
            count = 1.0 / alpha
            return torch.distributions.NegativeBinomial(count, probs=(mean / (mean + count)).clamp(1e-6, 1 - 1e-6),
                                                        validate_args=False)
        if kind == "beta":
            return torch.distributions.Beta(positive(p[..., 0]) + 1e-3, positive(p[..., 1]) + 1e-3)
        return _Point(p[..., 0] * scale[..., 0])


class _Point:
    """deterministic-L1: a point forecast; its 'log-likelihood' is minus the absolute error."""

    def __init__(self, value: torch.Tensor):
        self.value = value

    def log_prob(self, target: torch.Tensor) -> torch.Tensor:
        return -(target - self.value).abs()

    def sample(self) -> torch.Tensor:
        return self.value

    @property
    def mean(self) -> torch.Tensor:
        return self.value


def _scale(values: np.ndarray, observed: np.ndarray, likelihood: str) -> float:
    if likelihood == "beta":
        return 1.0
    seen = np.abs(values[observed])
    return 1.0 + (float(seen.mean()) if len(seen) else 0.0)


class Windows:
    """Turns series into the network's padded, scaled tensors."""

    def __init__(self, settings: dict[str, Any]):
        self.settings = settings
        self.history = max(settings["lags"])
        self.multiple, self.unit = settings["frequency"]
        #: id(series) -> (points before its start, calendar features, the series, kept so the id stays its own)
        self._calendar: dict[int, tuple[int, np.ndarray, Series]] = {}

    def covariates(self, series: Series, first: int, count: int) -> np.ndarray:
        """Calendar + dynamic features for points first..first+count-1 of `series` (indices may be negative or
        beyond its end). Calendar features are computed once per series, from `history` + context + horizon
        points before its start to prediction_length points after its end."""
        key = id(series)
        if key not in self._calendar:
            import pandas as pd

            before = self.history + self.settings["context_length"] + self.settings["prediction_length"]
            total = before + len(series.target) + self.settings["prediction_length"]
            start = _shift(series.start, -before, self.multiple, self.unit, pd)
            self._calendar[key] = (before, time_features(start, total, self.multiple, self.unit), series)
        before, calendar, _ = self._calendar[key]
        lo = first + before
        if lo < 0 or lo + count > calendar.shape[1]:
            import pandas as pd

            block = time_features(_shift(series.start, first, self.multiple, self.unit, pd), count, self.multiple,
                                  self.unit)
        else:
            block = calendar[:, lo:lo + count]
        rows = [block]
        if self.settings["num_dynamic_feat"]:
            dynamic = series.dynamic_feat
            assert dynamic is not None
            extra = np.zeros((dynamic.shape[0], count))
            lo, hi = max(first, 0), min(first + count, dynamic.shape[1])
            if hi > lo:
                extra[:, lo - first:hi - first] = dynamic[:, lo:hi]
            rows.append(extra)
        return np.concatenate(rows, axis=0)

    def window(self, series: Series, end: int, context: int, total: int) -> tuple[np.ndarray, ...]:
        """The window of `total` points ending before index `end` (its first `context` points are the context):
        (values with history, observed mask with history, covariates, scale, cats)."""
        first = end - total
        span = self.history + total
        values = np.zeros(span)
        observed = np.zeros(span, dtype=bool)
        lo = first - self.history
        source_lo, source_hi = max(lo, 0), min(end, len(series.target))
        if source_hi > source_lo:
            chunk = series.target[source_lo:source_hi]
            values[source_lo - lo:source_hi - lo] = np.nan_to_num(chunk)
            observed[source_lo - lo:source_hi - lo] = ~np.isnan(chunk)
        context_part = slice(self.history, self.history + context)
        scale = _scale(values[context_part], observed[context_part], self.settings["likelihood"])
        cats = np.array(series.cat if self.settings["cardinality"] else [], dtype=np.int64)
        return values / scale, observed, self.covariates(series, first, total), scale, cats


def _shift(start: Any, points: int, multiple: int, unit: str, pd: Any) -> Any:
    if unit == "M":
        return start + pd.DateOffset(months=points * multiple)
    return start + pd.to_timedelta(points * multiple, unit={"min": "min", "H": "h", "D": "D", "W": "W"}[unit])


def stack(windows: list[tuple[np.ndarray, ...]]) -> tuple[torch.Tensor, ...]:
    values, observed, covariates, scales, cats = zip(*windows, strict=True)
    return (torch.as_tensor(np.stack(values), dtype=torch.float32), torch.as_tensor(np.stack(observed)),
            torch.as_tensor(np.stack(covariates), dtype=torch.float32),
            torch.as_tensor(np.array(scales), dtype=torch.float32)[:, None],
            torch.as_tensor(np.stack(cats)).reshape(len(windows), -1))


def window_loss(net: DeepARNet, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Mean negative log-likelihood of the observed points of a batch of training windows."""
    values, observed, covariates, scale, cats = batch
    total = covariates.shape[2]
    inputs = net.features(values, covariates, cats, torch.log(scale), 0, total)
    output, _ = net.rnn(inputs)
    h = net.history
    target = values[:, h:] * scale
    mask = observed[:, h:]
    log_prob = net.distribution(output, scale).log_prob(_in_support(target, net.settings["likelihood"]))
    return -(log_prob * mask).sum() / mask.sum().clamp(min=1)


def _in_support(target: torch.Tensor, likelihood: str) -> torch.Tensor:
    if likelihood == "beta":
        return target.clamp(1e-6, 1 - 1e-6)
    if likelihood == "negative-binomial":
        return target.clamp(min=0).round()
    return target


def sample_paths(net: DeepARNet, windows: Windows, series: list[Series], num_samples: int,
                 generator: torch.Generator) -> np.ndarray:
    """(len(series), num_samples, prediction_length) sampled forecasts after each series' last point."""
    settings = net.settings
    context, horizon = settings["context_length"], settings["prediction_length"]
    made = [windows.window(s, len(s.target) + horizon, context, context + horizon) for s in series]
    values, _, covariates, scale, cats = stack(made)
    net.eval()
    with torch.no_grad():
        inputs = net.features(values, covariates, cats, torch.log(scale), 0, context)
        _, state = net.rnn(inputs)
        repeat = num_samples
        values = values.repeat_interleave(repeat, dim=0)
        covariates = covariates.repeat_interleave(repeat, dim=0)
        cats = cats.repeat_interleave(repeat, dim=0)
        scale = scale.repeat_interleave(repeat, dim=0)
        state = tuple(s.repeat_interleave(repeat, dim=1) for s in state)
        h = net.history
        out = torch.empty(values.shape[0], horizon)
        for step in range(horizon):
            t = context + step
            inputs = net.features(values, covariates, cats, torch.log(scale), t, 1)
            output, state = net.rnn(inputs, state)
            dist = net.distribution(output, scale)
            draw = dist.sample()[:, 0] if isinstance(dist, _Point) else _draw(dist, generator)[:, 0]
            out[:, step] = draw
            values[:, h + t] = draw / scale[:, 0]
    return out.reshape(len(series), repeat, horizon).numpy().astype(np.float64)


def _draw(dist: Any, generator: torch.Generator) -> torch.Tensor:
    """A sample from `dist` drawn from `generator` (reproducible), by inverse CDF where torch has one."""
    if isinstance(dist, torch.distributions.Normal):
        return dist.loc + dist.scale * torch.randn(dist.loc.shape, generator=generator)
    if isinstance(dist, torch.distributions.StudentT):
        z = torch.randn(dist.loc.shape, generator=generator)
        chi = torch.distributions.Chi2(dist.df)
        with torch.random.fork_rng():
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
            v = chi.sample()
        return dist.loc + dist.scale * z * torch.sqrt(dist.df / v)
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
        return dist.sample()


def save(net: DeepARNet, model_dir: Path, extra: dict[str, Any]) -> None:
    torch_artifact.save(model_dir, net.state_dict(), {**net.settings, **extra}, model_format=FORMAT)


def load(model_dir: Path) -> DeepARNet:
    settings, state = torch_artifact.read(model_dir, model_format=FORMAT, what="DeepAR")
    settings["frequency"] = tuple(settings["frequency"])
    net = DeepARNet(settings)
    net.load_state_dict(state)
    net.eval()
    return net


def quantile_loss(actual: np.ndarray, forecast: np.ndarray, q: float) -> float:
    """Summed quantile loss (both arrays flat); weighted by sum |actual| this is wQuantileLoss[q] / 2."""
    diff = actual - forecast
    return float(np.sum(np.maximum(q * diff, (q - 1) * diff)))




"""Mini-batch gradient descent for Linear Learner: `num_models` linear models trained side by side.

SageMaker's Linear Learner is a linear model trained by mini-batch SGD with a loss zoo, a choice of optimizer
(adam, rmsprop, sgd with momentum), separate learning-rate and L2 multipliers for the bias, a step learning-rate
scheduler, and several models trained in parallel with close hyperparameters. No scikit-learn estimator honours
that set (SGDClassifier has no adam, no softmax, no quantile loss, no bias multipliers, and updates per sample,
so `mini_batch_size` would mean nothing), so the optimisation is written here in NumPy. Each model is a column
block of one weight matrix, so the M models cost one wider matrix product per mini-batch, not M passes.

Everything here works in the model's space: features already normalised, regression labels already
standardised. Features may be a dense array or a CSR matrix (sparse recordIO data too large to densify). `loss_and_gradient` is also used to score final models in the label's own units.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

BINARY_LOSSES = ("logistic", "hinge_loss")
MULTICLASS_LOSSES = ("softmax_loss",)
REGRESSION_LOSSES = ("squared_loss", "absolute_loss", "eps_insensitive_squared_loss",
                     "eps_insensitive_absolute_loss", "quantile_loss", "huber_loss")
#: Losses whose value scales with the square of the label's unit (the others scale linearly).
SQUARED_LOSSES = ("squared_loss", "eps_insensitive_squared_loss")

_CHUNK = 65536  # rows per block when scoring a whole channel


@dataclasses.dataclass(frozen=True)
class LossParams:
    margin: float = 1.0
    quantile: float = 0.5
    epsilon: float = 0.01  # loss_insensitivity
    huber_delta: float = 1.0


def loss_and_gradient(loss: str, z: np.ndarray, y: np.ndarray, p: LossParams) -> tuple[np.ndarray, np.ndarray]:
    """Per-example loss (n, M) and its gradient with respect to the outputs `z` (n, M, k).

    `y` is (n,): 0/1 for binary losses, the class index for softmax, the target for regression losses.
    Squared losses report r**2 (so the objective is the MSE) and use the gradient r, as MXNet's
    LinearRegressionOutput does; Huber is the smooth-L1 form r**2/(2*delta) inside delta, |r| - delta/2
    outside, which stays defined (as the absolute loss) at huber_delta=0.
    """
    if loss == "softmax_loss":
        shifted = z - z.max(axis=2, keepdims=True)
        exp = np.exp(shifted)
        total = exp.sum(axis=2, keepdims=True)
        labels = y.astype(np.intp)
        rows = np.arange(z.shape[0])
        values = np.log(total[..., 0]) - shifted[rows, :, labels]
        grad = exp / total
        grad[rows, :, labels] -= 1.0
        return values, grad
    s = z[..., 0]
    t = y[:, None]
    if loss == "logistic":
        softplus = np.logaddexp(0.0, s)
        values = softplus - t * s
        grad = np.exp(s - softplus) - t
    elif loss == "hinge_loss":
        sign = 2.0 * t - 1.0
        slack = p.margin - sign * s
        values = np.maximum(slack, 0.0)
        grad = np.where(slack > 0.0, -sign, 0.0)
    else:
        r = s - t
        a = np.abs(r)
        if loss == "squared_loss":
            values, grad = r * r, r
        elif loss == "absolute_loss":
            values, grad = a, np.sign(r)
        elif loss == "eps_insensitive_squared_loss":
            excess = np.maximum(a - p.epsilon, 0.0)
            values, grad = excess * excess, np.sign(r) * excess
        elif loss == "eps_insensitive_absolute_loss":
            values, grad = np.maximum(a - p.epsilon, 0.0), np.where(a > p.epsilon, np.sign(r), 0.0)
        elif loss == "huber_loss":
            delta = p.huber_delta
            if delta <= 0.0:
                values, grad = a, np.sign(r)
            else:
                values = np.where(a <= delta, r * r / (2.0 * delta), a - delta / 2.0)
                grad = np.clip(r / delta, -1.0, 1.0)
        elif loss == "quantile_loss":
            q = p.quantile
            values = np.maximum(-q * r, (1.0 - q) * r)
            grad = np.where(r > 0.0, 1.0 - q, -q)
        else:
            raise ValueError(f"unknown loss {loss!r}")
    return values, grad[..., None]


@dataclasses.dataclass
class ModelGrid:
    """Per-model settings, one entry per model trained in parallel."""

    learning_rate: np.ndarray
    wd: np.ndarray
    l1: np.ndarray
    #: Binary only: the weight of positive examples (negatives weigh 1).
    positive_weight: np.ndarray

    @property
    def size(self) -> int:
        return len(self.learning_rate)


@dataclasses.dataclass
class SGDSettings:
    loss: str
    num_outputs: int
    epochs: int
    mini_batch_size: int
    optimizer: str = "adam"
    momentum: float = 0.0
    beta_1: float = 0.9
    beta_2: float = 0.999
    bias_lr_mult: float = 1.0
    bias_wd_mult: float = 0.0
    use_bias: bool = True
    init_method: str = "uniform"
    init_scale: float = 0.07
    init_sigma: float = 0.01
    init_bias: float = 0.0
    use_lr_scheduler: bool = True
    lr_scheduler_step: int = 100
    lr_scheduler_factor: float = 0.99
    lr_scheduler_minimum_lr: float = 1e-5
    early_stopping_patience: int = 3
    early_stopping_tolerance: float = 0.001
    loss_params: LossParams = dataclasses.field(default_factory=LossParams)
    #: Multiplies reported losses, to state them in the label's own units (regression label scaling).
    report_scale: float = 1.0
    seed: int = 0


@dataclasses.dataclass
class EpochReport:
    epoch: int
    train_loss: np.ndarray
    validation_loss: np.ndarray | None
    records_per_second: float
    #: Models still training after this epoch (early stopping freezes the others).
    active: np.ndarray


@dataclasses.dataclass
class TrainedModels:
    #: (M, d, k) and (M, k): for each model, the parameters of its best epoch.
    weights: np.ndarray
    biases: np.ndarray
    best_loss: np.ndarray
    best_epoch: np.ndarray
    epochs_run: int


def train_models(x: np.ndarray, y: np.ndarray, settings: SGDSettings, grid: ModelGrid, *,
                 sample_weight: np.ndarray | None = None,
                 validation: tuple[np.ndarray, np.ndarray] | None = None,
                 on_epoch: Callable[[EpochReport], None] | None = None) -> TrainedModels:
    """Train `grid.size` models on (x, y) for up to `settings.epochs` shuffled passes of mini-batches.

    Early stopping watches each model's loss on `validation` when given, else its running training loss;
    a model stops after `early_stopping_patience` epochs whose relative improvement is below
    `early_stopping_tolerance`, and every model keeps the parameters of its best epoch.
    """
    s = settings
    n, d = x.shape
    m, k = grid.size, s.num_outputs
    cols = m * k
    rng = np.random.default_rng(s.seed)
    if s.init_method == "normal":
        w = rng.normal(0.0, s.init_sigma, size=(d, cols))
    else:
        w = rng.uniform(-s.init_scale, s.init_scale, size=(d, cols))
    b = np.full(cols, s.init_bias if s.use_bias else 0.0)
    lr0 = np.repeat(grid.learning_rate.astype(np.float64), k)
    wd = np.repeat(grid.wd.astype(np.float64), k)
    l1 = np.repeat(grid.l1.astype(np.float64), k)
    bias_wd = wd * s.bias_wd_mult
    min_lr = np.minimum(s.lr_scheduler_minimum_lr, lr0)
    binary = s.loss in BINARY_LOSSES
    pos_weight = grid.positive_weight.astype(np.float64)
    needs_weights = sample_weight is not None or (binary and bool(np.any(pos_weight != 1.0)))

    state_w = [np.zeros_like(w), np.zeros_like(w)]
    state_b = [np.zeros_like(b), np.zeros_like(b)]
    best_w, best_b = w.copy(), b.copy()
    best_loss = np.full(m, np.inf)
    best_epoch = np.zeros(m, dtype=np.int64)
    reference = np.full(m, np.inf)  # the loss improvements are measured against (significant ones only)
    waited = np.zeros(m, dtype=np.int64)
    active = np.ones(m, dtype=bool)
    step = 0
    epochs_run = 0
    batch = max(1, min(s.mini_batch_size, n))

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for epoch in range(s.epochs):
            started = time.perf_counter()
            order = rng.permutation(n)
            running = np.zeros(m)
            live = np.repeat(active, k).astype(np.float64)
            for start in range(0, n, batch):
                idx = order[start:start + batch]
                xb = x[idx].astype(np.float64, copy=False)
                yb = y[idx]
                rows = len(idx)
                z = (xb @ w + b).reshape(rows, m, k)
                values, grad = loss_and_gradient(s.loss, z, yb, s.loss_params)
                running += values.sum(axis=0)
                if needs_weights:
                    scale = np.ones((rows, m))
                    if binary:
                        scale = np.where(yb[:, None] == 1, pos_weight[None, :], 1.0)
                    if sample_weight is not None:
                        scale = scale * sample_weight[idx][:, None]
                    grad = grad * scale[..., None]
                g = grad.reshape(rows, cols)
                gw = xb.T @ g
                gw /= rows
                gw += wd * w
                if l1.any():
                    gw += l1 * np.sign(w)
                if s.use_bias:
                    gb = g.mean(axis=0) + bias_wd * b
                if s.use_lr_scheduler:
                    lr = np.maximum(lr0 * s.lr_scheduler_factor ** (step // s.lr_scheduler_step), min_lr)
                else:
                    lr = lr0
                lr = lr * live
                step += 1
                w += _update(s, state_w, gw, lr, step)
                if s.use_bias:
                    b += _update(s, state_b, gb, lr * s.bias_lr_mult, step)
            train_loss = running / n * s.report_scale
            validation_loss = None
            if validation is not None:
                validation_loss = _mean_losses(s.loss, validation[0], validation[1], w, b, m, k,
                                               s.loss_params) * s.report_scale
            watched = validation_loss if validation_loss is not None else train_loss
            watched = np.where(np.isfinite(watched), watched, np.inf)
            better = active & (watched < best_loss)
            if better.any():
                keep = np.repeat(better, k)
                best_w[:, keep] = w[:, keep]
                best_b[keep] = b[keep]
                best_loss[better] = watched[better]
                best_epoch[better] = epoch
            significant = active & (watched < reference - s.early_stopping_tolerance * np.abs(reference))
            significant |= active & ~np.isfinite(reference) & np.isfinite(watched)
            reference[significant] = watched[significant]
            waited[significant] = 0
            waited[active & ~significant] += 1
            finite = np.isfinite(w).all(axis=0) & np.isfinite(b)
            diverged = ~finite.reshape(m, k).all(axis=1)
            active &= (waited < s.early_stopping_patience) & ~diverged
            epochs_run = epoch + 1
            elapsed = max(time.perf_counter() - started, 1e-9)
            if on_epoch is not None:
                on_epoch(EpochReport(epoch, train_loss, validation_loss, n / elapsed, active.copy()))
            if not active.any():
                break

    return TrainedModels(
        weights=best_w.reshape(d, m, k).transpose(1, 0, 2).copy(),
        biases=best_b.reshape(m, k).copy(),
        best_loss=best_loss, best_epoch=best_epoch, epochs_run=epochs_run)


def _mean_losses(loss: str, x: np.ndarray, y: np.ndarray, w: np.ndarray, b: np.ndarray, m: int, k: int,
                 p: LossParams) -> np.ndarray:
    total = np.zeros(m)
    for start in range(0, x.shape[0], _CHUNK):
        xb = x[start:start + _CHUNK].astype(np.float64, copy=False)
        z = (xb @ w + b).reshape(xb.shape[0], m, k)
        values, _ = loss_and_gradient(loss, z, y[start:start + _CHUNK], p)
        total += values.sum(axis=0)
    return total / x.shape[0]


def _update(s: SGDSettings, state: list[np.ndarray], g: np.ndarray, lr: np.ndarray, step: int) -> np.ndarray:
    """The parameter change for gradient `g` (state is updated in place)."""
    if s.optimizer == "adam":
        first, second = state
        first *= s.beta_1
        first += (1.0 - s.beta_1) * g
        second *= s.beta_2
        second += (1.0 - s.beta_2) * g * g
        corr1 = 1.0 - s.beta_1 ** step
        corr2 = 1.0 - s.beta_2 ** step
        return -lr * (first / corr1) / (np.sqrt(second / corr2) + 1e-8)
    if s.optimizer == "rmsprop":
        mean_square, velocity = state
        mean_square *= _RMSPROP_DECAY
        mean_square += (1.0 - _RMSPROP_DECAY) * g * g
        velocity *= s.momentum
        velocity -= lr * g / (np.sqrt(mean_square) + 1e-8)
        return velocity.copy()
    velocity = state[0]
    velocity *= s.momentum
    velocity -= lr * g
    return velocity.copy()


#: RMSProp's decay of the squared-gradient average (MXNet's gamma1 default); not a Linear Learner setting.
_RMSPROP_DECAY = 0.9

__all__ = ["BINARY_LOSSES", "MULTICLASS_LOSSES", "REGRESSION_LOSSES", "SQUARED_LOSSES", "EpochReport",
           "LossParams", "ModelGrid", "SGDSettings", "TrainedModels", "loss_and_gradient", "train_models"]

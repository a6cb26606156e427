"""The evaluation's pictures, drawn with scikit-learn's displays on matplotlib's Agg backend (no display).

`confusion_matrix.png` for classification; `roc.png` for binary classification and for multiclass models
that give class probabilities (one-vs-rest, one curve per class); `predicted_vs_actual.png` for regression.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _figure(size: tuple[float, float] = (5.5, 4.5)):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100)
    return figure, figure.add_subplot()


def confusion_matrix_png(path: Path, y: np.ndarray, predicted: np.ndarray, title: str) -> Path:
    from sklearn.metrics import ConfusionMatrixDisplay

    figure, axes = _figure()
    labels = np.unique(np.concatenate([y, predicted]))
    display = ConfusionMatrixDisplay.from_predictions(
        y, predicted, labels=labels, display_labels=[f"{v:g}" for v in labels], ax=axes, colorbar=True,
        cmap="Blues")
    display.ax_.set_title(title)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def roc_png(path: Path, y: np.ndarray, scores: np.ndarray, title: str) -> Path | None:
    """None when no curve can be drawn (one class only)."""
    from sklearn.metrics import RocCurveDisplay

    figure, axes = _figure()
    drawn = 0
    if scores.ndim == 1:
        if 0 < y.sum() < len(y):
            RocCurveDisplay.from_predictions(y, scores, ax=axes, name="model")
            drawn += 1
    else:
        for index in range(scores.shape[1]):
            positive = (y == index).astype(np.int64)
            if 0 < positive.sum() < len(y):
                RocCurveDisplay.from_predictions(positive, scores[:, index], ax=axes, name=f"class {index} vs rest")
                drawn += 1
    if not drawn:
        return None
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    axes.legend(loc="lower right", fontsize="small")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path


def predicted_vs_actual_png(path: Path, y: np.ndarray, predicted: np.ndarray, title: str) -> Path:
    from sklearn.metrics import PredictionErrorDisplay

    figure, axes = _figure()
    PredictionErrorDisplay.from_predictions(y, predicted, kind="actual_vs_predicted", ax=axes)
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, format="png")
    return path

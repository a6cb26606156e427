"""The report's figures, drawn by matplotlib from a profile's statistics and returned as PNG data URIs.

Figures are drawn from what the profile already holds (histogram counts, box statistics, a small sample),
never from the full data, and kept few and small so that drawing stays a small part of a profile's cost.
matplotlib's object API is used without pyplot: no global figure state, no GUI backend.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from sagelab.profiling.model import Attribute, ClassBalance, Correlations, ScatterSample

_STYLE = {"font.size": 7, "axes.titlesize": 8, "axes.spines.top": False, "axes.spines.right": False,
          "axes.edgecolor": "#999999", "xtick.color": "#444444", "ytick.color": "#444444"}
_BAR = "#4C72B0"
_DPI = 72


@contextmanager
def style() -> Iterator[None]:
    """The figures' look. Entered once around all the figures of a report: entering matplotlib's
    rc_context per figure costs about as much as drawing a small figure."""
    import matplotlib

    with matplotlib.rc_context(_STYLE):
        yield


@contextmanager
def _figure(width: float, height: float) -> Iterator:
    from matplotlib.figure import Figure

    # A fixed layout: matplotlib's constrained layout solver costs more than drawing these figures.
    yield Figure(figsize=(width, height), dpi=_DPI)


def _data_uri(figure) -> str:
    buffer = io.BytesIO()
    # A light zlib level: the default spends more time compressing than these figures take to draw.
    figure.savefig(buffer, format="png", pil_kwargs={"compress_level": 2})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _short(value: object, width: int = 18) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def attribute_figure(attribute: Attribute) -> str | None:
    if attribute.numeric is not None and attribute.kind == "numeric":
        return _histogram_with_box(attribute)
    if attribute.datetime is not None:
        return _datetime_histogram(attribute)
    if attribute.kind in ("categorical", "boolean") or (attribute.numeric is not None):
        return _bar_chart([str(vc.value) for vc in attribute.most_frequent[:10]],
                          [vc.count for vc in attribute.most_frequent[:10]])
    return None


def _ticks(axis, values, labels=None) -> None:
    """Ticks placed and labelled by hand: matplotlib's automatic locators and formatters cost more than
    the rest of these small figures together."""
    values = list(values)
    axis.set_ticks(values, labels if labels is not None else [_number(v) for v in values])


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1e3 or float(value).is_integer() else f"{value:.3g}"


def _spread(low: float, high: float, count: int = 4) -> np.ndarray:
    return np.linspace(low, high, count) if high > low else np.array([low])


def _histogram_with_box(attribute: Attribute) -> str:
    """Histogram above, box plot below, in one axes (one axes draws in about half the time of two)."""
    stats = attribute.numeric
    with _figure(3.6, 2.1) as fig:
        ax = fig.add_axes((0.13, 0.13, 0.84, 0.83))
        peak = max(stats.histogram.counts) or 1
        ax.stairs(stats.histogram.counts, stats.histogram.edges, fill=True, color=_BAR, alpha=0.85)
        _box(ax, stats.box, centre=-0.16 * peak, half_height=0.06 * peak)
        ax.set_ylim(-0.25 * peak, 1.05 * peak)
        edges = stats.histogram.edges
        ax.set_xlim(edges[0], edges[-1])
        _ticks(ax.xaxis, _spread(edges[0], edges[-1]))
        _ticks(ax.yaxis, [0, peak])
        ax.set_ylabel("count")
        return _data_uri(fig)


def _box(ax, box, centre: float, half_height: float) -> None:
    """A horizontal box plot (box, median, whiskers with caps, fliers) as two artists: matplotlib's bxp makes
    one per part, and each artist costs about as much to add as to draw."""
    low, high, cap = centre - half_height, centre + half_height, half_height / 2
    nan = np.nan
    xs = [box.q1, box.q3, box.q3, box.q1, box.q1, nan, box.median, box.median, nan,
          box.whisker_low, box.q1, nan, box.q3, box.whisker_high, nan,
          box.whisker_low, box.whisker_low, nan, box.whisker_high, box.whisker_high]
    ys = [low, low, high, high, low, nan, low, high, nan, centre, centre, nan, centre, centre, nan,
          centre - cap, centre + cap, nan, centre - cap, centre + cap]
    ax.plot(xs, ys, color="#333333", linewidth=0.9)
    if box.fliers:
        ax.plot(box.fliers, [centre] * len(box.fliers), linestyle="none", marker="o", markersize=2,
                markerfacecolor="none", markeredgecolor="#333333", alpha=0.5)


def _datetime_histogram(attribute: Attribute) -> str | None:
    histogram = attribute.datetime.histogram
    if not histogram.counts:
        return None
    with _figure(3.6, 1.9) as fig:
        ax = fig.add_axes((0.13, 0.14, 0.84, 0.82))
        ax.stairs(histogram.counts, histogram.edges, fill=True, color=_BAR, alpha=0.85)
        ax.set_xlim(histogram.edges[0], histogram.edges[-1])
        positions = _spread(histogram.edges[0], histogram.edges[-1], 3)
        _ticks(ax.xaxis, positions, [dt.datetime.fromtimestamp(x, dt.UTC).strftime("%Y-%m-%d") for x in positions])
        _ticks(ax.yaxis, [0, max(histogram.counts)])
        ax.set_ylabel("count")
        return _data_uri(fig)


def _bar_chart(labels: list[str], counts: list[int], title: str | None = None) -> str | None:
    if not counts:
        return None
    height = 0.6 + 0.17 * len(counts) + (0.2 if title else 0)
    with _figure(3.6, height) as fig:
        ax = fig.add_axes((0.3, 0.45 / height, 0.66, 1 - (0.55 + (0.2 if title else 0)) / height))
        # The bars as one collection and their labels as plain text: a patch per bar and a tick per label
        # cost more to create than the whole figure takes to draw.
        from matplotlib.collections import PolyCollection

        positions = np.arange(len(counts))[::-1]
        ax.add_collection(PolyCollection([((0, y - 0.4), (n, y - 0.4), (n, y + 0.4), (0, y + 0.4))
                                          for y, n in zip(positions, counts, strict=True)], facecolors=_BAR))
        ax.set_ylim(-0.6, len(counts) - 0.4)
        ax.yaxis.set_ticks([])
        for y, label in zip(positions, labels, strict=True):
            ax.text(-0.02, y, _short(label), transform=ax.get_yaxis_transform(), ha="right", va="center")
        ax.set_xlim(0, max(counts) * 1.05)
        _ticks(ax.xaxis, _spread(0, max(counts), 3))
        ax.set_xlabel("count")
        if title:
            ax.set_title(title)
        return _data_uri(fig)


def class_balance_figure(balance: ClassBalance) -> str | None:
    if balance.problem == "regression" and balance.histogram is not None:
        with _figure(3.6, 1.9) as fig:
            ax = fig.add_axes((0.13, 0.2, 0.84, 0.76))
            ax.stairs(balance.histogram.counts, balance.histogram.edges, fill=True, color=_BAR, alpha=0.85)
            edges = balance.histogram.edges
            ax.set_xlim(edges[0], edges[-1])
            _ticks(ax.xaxis, _spread(edges[0], edges[-1]))
            _ticks(ax.yaxis, [0, max(balance.histogram.counts)])
            ax.set_xlabel(balance.target)
            ax.set_ylabel("count")
            return _data_uri(fig)
    return _bar_chart([str(vc.value) for vc in balance.classes], [vc.count for vc in balance.classes],
                      title=f"{balance.target}: rows per class")


def correlation_figure(correlations: Correlations) -> str:
    """One heatmap for both coefficients: Pearson above the diagonal, Spearman below. Drawn with the axes
    turned off, its labels and colour scale as plain text and a second image: matplotlib's tick and colorbar
    machinery would take most of the time, and one heatmap half the time of two."""
    size = len(correlations.columns)
    cell = min(0.32, 5.0 / size)  # inches
    margin = 1.0  # inches for the row and column labels
    side = cell * size
    pearson = np.array([[np.nan if v is None else v for v in row] for row in correlations.pearson], dtype=float)
    spearman = np.array([[np.nan if v is None else v for v in row] for row in correlations.spearman], dtype=float)
    values = np.where(np.triu(np.ones((size, size), dtype=bool)), pearson, spearman)
    with _figure(margin + side + 0.9, margin + side + 0.3) as fig:
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        width, height = fig.get_figwidth(), fig.get_figheight()
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)  # inches from the top left corner
        top = 0.3
        ax.imshow(values, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest",
                  extent=(margin, margin + side, top + side, top))
        for k, name in enumerate(correlations.columns):
            label = _short(name, 14)
            ax.text(margin - 0.05, top + (k + 0.5) * cell, label, ha="right", va="center")
            ax.text(margin + (k + 0.5) * cell, top + side + 0.05, label, ha="center", va="top", rotation=90)
        ax.text(margin + side / 2, top - 0.06, "Pearson above the diagonal · Spearman below", ha="center",
                va="bottom", fontsize=8)
        scale = margin + side + 0.25
        ax.imshow(np.linspace(1, -1, 64)[:, None], cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest",
                  extent=(scale, scale + 0.12, top + side, top))
        for value, y in ((1, top), (0, top + side / 2), (-1, top + side)):
            ax.text(scale + 0.17, y, f"{value:+d}" if value else "0", va="center")
        ax.set_aspect("auto")
        return _data_uri(fig)


def scatter_matrix_figure(scatter: ScatterSample) -> str:
    """Small multiples drawn in one axes: each attribute scaled to its own [0, 1] range and each panel
    offset on a grid. One axes with one marker line per class draws many times faster than k² axes (and
    than a scatter collection); each panel is labelled with its attribute and range instead of tick marks."""
    k = len(scatter.columns)
    values = [np.asarray(v, dtype=float) for v in scatter.values]
    lows = [float(v.min()) if len(v) else 0.0 for v in values]
    highs = [float(v.max()) if len(v) else 1.0 for v in values]
    scaled = [(v - lo) / (hi - lo) if hi > lo else np.full_like(v, 0.5) for v, lo, hi in zip(values, lows, highs,
                                                                                             strict=True)]
    step = 1.15
    hue = np.array([str(h) for h in scatter.hue]) if scatter.hue is not None else None
    classes = sorted(set(hue.tolist())) if hue is not None else []
    xs, ys, frames = [], [], []
    with _figure(1.5 * k + (1.0 if classes else 0.4), 1.5 * k + 0.3) as fig:
        ax = fig.add_axes((0.02, 0.02, (1.5 * k) / fig.get_figwidth(), (1.5 * k) / fig.get_figheight()))
        for i in range(k):
            for j in range(k):
                x0, y0 = j * step, -i * step
                frames.extend([(x0, x0 + 1, x0 + 1, x0, x0, np.nan), (y0, y0, y0 + 1, y0 + 1, y0, np.nan)])
                if i == j:
                    counts, edges = np.histogram(scaled[i], bins=20, range=(0, 1))
                    ax.stairs(y0 + 0.95 * counts / max(counts.max(), 1), x0 + edges, baseline=y0, fill=True,
                              color=_BAR, alpha=0.85)
                    ax.text(x0 + 0.5, y0 + 1.02, _short(scatter.columns[i], 22), ha="center", va="bottom",
                            fontsize=7, fontweight="bold")
                    ax.text(x0 + 0.5, y0 - 0.02, f"{lows[i]:.3g} – {highs[i]:.3g}", ha="center", va="top",
                            fontsize=6, color="#555555")
                else:
                    xs.append(x0 + scaled[j])
                    ys.append(y0 + scaled[i])
        # All panel frames as one line (NaN breaks it): one artist instead of k² patches.
        ax.plot(np.concatenate(frames[0::2]), np.concatenate(frames[1::2]), color="#cccccc", linewidth=0.6)
        if xs:
            x, y = np.concatenate(xs), np.concatenate(ys)
            groups = [(None, np.ones(len(x), dtype=bool), _BAR)] if hue is None else [
                (c, np.tile(hue == c, k * k - k), f"C{n}") for n, c in enumerate(classes)]
            handles = [ax.plot(x[rows], y[rows], linestyle="none", marker="o", markersize=1.6, markeredgewidth=0,
                               color=colour, alpha=0.5, label=_short(c, 12) if c is not None else None)[0]
                       for c, rows, colour in groups]
            if classes:
                fig.legend(handles=handles, loc="upper right", fontsize=6, frameon=False, markerscale=2.5)
        ax.set_xlim(-0.05, (k - 1) * step + 1.05)
        ax.set_ylim(-(k - 1) * step - 0.1, 1.12)
        ax.set_axis_off()
        return _data_uri(fig)


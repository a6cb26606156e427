"""A profile as one self-contained HTML file: inline CSS, PNG figures as data URIs, no script, no network.

Every section is always present (with a sentence saying why when it has nothing to show), so readers
and tests can rely on the anchors: overview, alerts, attributes, class-balance, correlations,
contingency, scatter-matrix, outliers.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

from sagelab import __version__
from sagelab.profiling import plots
from sagelab.profiling.compute import (
    HIGH_CARDINALITY,
    HIGH_CORRELATION,
    IMBALANCE_RATIO,
    MANY_MISSING,
    SKEWED,
)
from sagelab.profiling.model import Attribute, Profile


class AttributeFigures:
    """Attribute figures drawn ahead of the report. Passed as `profile(..., on_attribute=figures.draw)`, each
    figure is drawn as soon as its attribute is computed, while the profiler's worker threads are still
    computing other columns, instead of all of them after the profile."""

    def __init__(self) -> None:
        self._drawn: dict[str, str | None] = {}

    def draw(self, attribute: Attribute) -> None:
        self._drawn[attribute.name] = plots.attribute_figure(attribute)

    def of(self, attribute: Attribute) -> str | None:
        if attribute.name not in self._drawn:
            self.draw(attribute)
        return self._drawn[attribute.name]

SECTIONS = (
    ("overview", "Overview"),
    ("alerts", "Warnings"),
    ("attributes", "Attributes"),
    ("class-balance", "Target class balance"),
    ("correlations", "Correlations"),
    ("contingency", "Contingency tables"),
    ("scatter-matrix", "Scatter matrix"),
    ("outliers", "Outliers"),
)

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#222;background:#f6f7f9}
header{background:#232f3e;color:#fff;padding:14px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#ccd}nav{padding:8px 28px;background:#fff;border-bottom:1px solid #ddd;
position:sticky;top:0}nav a{margin-right:14px;color:#0a58ca;text-decoration:none}
main{padding:8px 28px 40px}section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;
margin:16px 0;padding:12px 18px}h2{font-size:17px;margin:4px 0 10px}h3{font-size:15px;margin:0 0 6px}
table{border-collapse:collapse;font-size:12.5px;margin:4px 0}td,th{border:1px solid #e1e4e8;
padding:3px 8px;text-align:right}th{background:#f3f4f6}td.l,th.l{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:14px}.card{border:1px solid #e1e4e8;border-radius:6px;
padding:10px 12px;flex:1 1 620px;max-width:900px}.row{display:flex;gap:12px;flex-wrap:wrap;align-items:flex-start}
.kind{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;background:#e7eefb;color:#234}
.alert{margin:4px 0;padding:4px 10px;border-left:4px solid #d9822b;background:#fff8ef}
.muted{color:#666}img{max-width:100%}
"""


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        return f"{value:,.0f}" if abs(value) >= 1e6 and value.is_integer() else f"{value:.5g}"
    return html.escape(str(value))


def _bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _e(text: object) -> str:
    return html.escape(str(text))


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    head = "".join(f'<th class="l">{_e(h)}</th>' if i < left else f"<th>{_e(h)}</th>"
                   for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f'<td class="l">{c}</td>' if i < left else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(uri: str | None, alt: str) -> str:
    return f'<img src="{uri}" alt="{_e(alt)}">' if uri else ""


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{title}</h2>{body}</section>'


def _overview(profile: Profile) -> str:
    o = profile.overview
    share = o.missing_cells / (o.rows * o.columns) if o.rows and o.columns else 0.0
    rows = [["Rows", _fmt(o.rows)], ["Columns", _fmt(o.columns)],
            ["Duplicate rows", f"{_fmt(o.duplicate_rows)} ({o.duplicate_rows / o.rows:.1%})" if o.rows else "0"],
            ["Missing cells", f"{_fmt(o.missing_cells)} ({share:.1%})"],
            ["Memory (in-memory columnar size)", _bytes(o.memory_bytes)],
            ["Attribute kinds", ", ".join(f"{k}: {n}" for k, n in sorted(o.kinds.items()))],
            ["Target", _e(profile.target) if profile.target else "none given"]]
    return _table(["Statistic", "Value"], rows)


def _alerts(profile: Profile) -> str:
    if not profile.alerts:
        return '<p class="muted">No warnings.</p>'
    items = "".join(f'<div class="alert"><b>{_e(a.kind.replace("_", " "))}</b>: {_e(a.message)}</div>'
                    for a in profile.alerts)
    rules = (f"Rules: many missing ≥ {MANY_MISSING:.0%}; high cardinality &gt; {HIGH_CARDINALITY} distinct values; "
             f"highly correlated |r| or Cramér's V ≥ {HIGH_CORRELATION}; skewed |skewness| &gt; {SKEWED}; "
             f"imbalanced target when its largest class is ≥ {IMBALANCE_RATIO:g}× its smallest.")
    return items + f'<p class="muted">{rules}</p>'


def _attribute(index: int, a: Attribute, figures: AttributeFigures) -> str:
    rows = [["Type", f'<span class="kind">{_e(a.kind)}</span> <span class="muted">{_e(a.physical_type)}</span>'],
            ["Present", _fmt(a.count)], ["Missing", f"{_fmt(a.missing)} ({a.missing_share:.1%})"],
            ["Distinct", _fmt(a.distinct)], ["Mode", _fmt(a.mode)]]
    if a.numeric is not None:
        s = a.numeric
        rows += [["Mean", _fmt(s.mean)], ["Std", _fmt(s.std)], ["Min", _fmt(s.min)], ["Max", _fmt(s.max)]]
        rows += [[f"Quantile {q}", _fmt(v)] for q, v in s.quantiles.items()]
        rows += [["Sum", _fmt(s.sum)], ["Zeros", _fmt(s.zeros)], ["Negatives", _fmt(s.negatives)],
                 ["Skewness", _fmt(s.skewness)], ["Kurtosis", _fmt(s.kurtosis)]]
    if a.datetime is not None:
        rows += [["Min", _fmt(a.datetime.min)], ["Max", _fmt(a.datetime.max)]]
    if a.text is not None:
        rows += [["Length min / mean / max",
                  f"{_fmt(a.text.min_length)} / {_fmt(a.text.mean_length)} / {_fmt(a.text.max_length)}"]]
    frequent = _table(["Most frequent", "Count"], [[_fmt(vc.value), _fmt(vc.count)] for vc in a.most_frequent[:10]])
    least = _table(["Least frequent", "Count"], [[_fmt(vc.value), _fmt(vc.count)] for vc in a.least_frequent])
    figure = _img(figures.of(a), f"distribution of {a.name}")
    return (f'<div class="card" id="attribute-{index}"><h3>{_e(a.name)}</h3><div class="row">'
            f'{_table(["Statistic", "Value"], rows)}<div>{figure}</div><div>{frequent}</div><div>{least}</div>'
            "</div></div>")


def _class_balance(profile: Profile) -> str:
    balance = profile.class_balance
    if balance is None:
        return '<p class="muted">No target column was given (<code>--target COLUMN</code>).</p>'
    figure = _img(plots.class_balance_figure(balance), f"class balance of {balance.target}")
    if balance.problem == "regression":
        return (f"<p>Target <b>{_e(balance.target)}</b> is numeric with many values (a regression target): "
                f"its distribution is shown.</p>{figure}")
    total = sum(vc.count for vc in balance.classes)
    rows = [[_fmt(vc.value), _fmt(vc.count), f"{vc.count / total:.1%}"] for vc in balance.classes]
    ratio = f"Imbalance ratio (largest / smallest class): <b>{balance.imbalance_ratio:.2f}</b>"
    return f'<p>{ratio}</p><div class="row">{_table(["Class", "Rows", "Share"], rows)}{figure}</div>'


def _correlations(profile: Profile) -> str:
    c = profile.correlations
    if c is None:
        return '<p class="muted">Fewer than two numeric attributes: no correlation matrix.</p>'
    pairs = [(c.columns[i], c.columns[j], c.pearson[i][j], c.spearman[i][j])
             for i in range(len(c.columns)) for j in range(i + 1, len(c.columns))]
    pairs.sort(key=lambda p: -abs(p[2] or 0.0))
    rows = [[_e(a), _e(b), _fmt(p), _fmt(s)] for a, b, p, s in pairs[:15]]
    total = profile.overview.rows

    def basis(n: int) -> str:
        return "all rows" if n >= total else f"a uniform sample of {n:,} rows"

    note = (f'<p class="muted">Pearson on {basis(c.pearson_rows)}, Spearman on {basis(c.spearman_rows)}; '
            "each pair over the rows where both are present.</p>")
    return (f'{_img(plots.correlation_figure(c), "correlation heatmap")}{note}'
            f'{_table(["Attribute", "Attribute", "Pearson", "Spearman"], rows, left=2)}')


def _contingency(profile: Profile) -> str:
    if not profile.contingency:
        return ('<p class="muted">Fewer than two categorical attributes with 2 to 20 values: '
                "no contingency tables.</p>")
    parts = []
    for t in profile.contingency:
        peak = max(max(r) for r in t.counts) or 1
        header = [f"{_e(t.row)} \\ {_e(t.column)}"] + [_fmt(v) for v in t.column_values] + ["Total"]
        body = []
        for value, counts in zip(t.row_values, t.counts, strict=True):
            cells = "".join(f'<td style="background:rgba(76,114,176,{0.08 + 0.6 * n / peak:.2f})">{_fmt(n)}</td>'
                            for n in counts)
            body.append(f'<tr><td class="l">{_fmt(value)}</td>{cells}<td>{_fmt(sum(counts))}</td></tr>')
        head = "".join(f'<th class="l">{h}</th>' if i == 0 else f"<th>{h}</th>" for i, h in enumerate(header))
        parts.append(f'<div class="card"><h3>{_e(t.row)} × {_e(t.column)}</h3><table><thead><tr>{head}</tr>'
                     f'</thead><tbody>{"".join(body)}</tbody></table><p class="muted">χ² = {t.chi2:.4g}, '
                     f"p = {t.p_value:.3g}, Cramér's V = {t.cramers_v:.3f}</p></div>")
    return f'<div class="grid">{"".join(parts)}</div>'


def _scatter(profile: Profile) -> str:
    s = profile.scatter
    if s is None:
        return '<p class="muted">Fewer than two numeric attributes: no scatter matrix.</p>'
    basis = ("their correlation with the target" if profile.target in (profile.correlations.columns or [])
             else "their strongest correlation with another attribute")
    return (f'<p class="muted">The {len(s.columns)} numeric attributes chosen by {basis}, on '
            f"{len(s.values[0]):,} sampled rows{' coloured by target class' if s.hue else ''}.</p>"
            f'{_img(plots.scatter_matrix_figure(s), "scatter matrix")}')


def _outliers(profile: Profile) -> str:
    rows = []
    for a in profile.attributes:
        if a.numeric is None or a.kind != "numeric":
            continue
        s = a.numeric
        low, high = s.iqr_fences
        rows.append([_e(a.name), _fmt(low), _fmt(high), f"{_fmt(s.outliers_iqr)} ({s.outliers_iqr / a.count:.2%})",
                     f"{_fmt(s.outliers_zscore)} ({s.outliers_zscore / a.count:.2%})"])
    if not rows:
        return '<p class="muted">No numeric attributes.</p>'
    return (_table(["Attribute", "IQR fence low", "IQR fence high", "Outside IQR fences", "|z| > 3"], rows)
            + '<p class="muted">IQR fences: Q1 − 1.5·IQR and Q3 + 1.5·IQR (box-plot whiskers end at the last '
              "value inside them); z-score from the mean and sample standard deviation.</p>")


def render(profile: Profile, *, title: str = "Data quality report", source: str | None = None,
           figures: AttributeFigures | None = None) -> str:
    figures = figures or AttributeFigures()
    with plots.style():
        attributes = "".join(_attribute(i, a, figures) for i, a in enumerate(profile.attributes))
        bodies = {
            "overview": _overview(profile),
            "alerts": _alerts(profile),
            "attributes": f'<div class="grid">{attributes}</div>',
            "class-balance": _class_balance(profile),
            "correlations": _correlations(profile),
            "contingency": _contingency(profile),
            "scatter-matrix": _scatter(profile),
            "outliers": _outliers(profile),
        }
    nav = "".join(f'<a href="#{anchor}">{name}</a>' for anchor, name in SECTIONS)
    sections = "".join(_section(anchor, name, bodies[anchor]) for anchor, name in SECTIONS)
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    subtitle = f"{_e(source)} · " if source else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
            f"<body><header><h1>{_e(title)}</h1><p>{subtitle}{_fmt(profile.overview.rows)} rows × "
            f"{_fmt(profile.overview.columns)} columns · sagelab {__version__} · {when}</p></header>"
            f"<nav>{nav}</nav><main>{sections}</main></body></html>")


def write_report(profile: Profile, path: Path, *, title: str = "Data quality report",
                 source: str | None = None, figures: AttributeFigures | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(profile, title=title, source=source, figures=figures), encoding="utf-8")
    return path

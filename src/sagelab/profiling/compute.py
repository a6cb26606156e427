"""Compute a `Profile` in a few vectorised passes.

Arrow counts the values of text columns; DuckDB answers what is a query over whole rows: duplicate rows,
contingency tables, other columns' frequencies, date statistics. Numeric columns are put in order once, on
worker threads (NumPy's sort, or counting for integers of a narrow range); one ordered array gives exact
quantiles, distinct values and their frequencies, IQR and z-score outlier counts, box-plot whiskers and
histograms without further scans. Their centred values feed skewness, kurtosis and, in four matrix products,
every pair's Pearson r. Spearman ranks and the scatter matrix use a uniform sample of big tables.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sagelab.errors import ValidationError
from sagelab.profiling.model import (
    BOOLEAN,
    CATEGORICAL,
    DATETIME,
    EMPTY,
    NUMERIC,
    QUANTILES,
    TEXT,
    Alert,
    Attribute,
    BoxStats,
    ClassBalance,
    Contingency,
    Correlations,
    DatetimeStats,
    Histogram,
    NumericStats,
    Overview,
    Profile,
    ScatterSample,
    TextStats,
    ValueCount,
)
from sagelab.profiling.source import to_arrow

TOP_VALUES = 10
#: Non-numeric columns keep more of their most frequent values: statistics.json lists them as buckets.
CATEGORY_BUCKETS = 50
LEAST_VALUES = 5
HISTOGRAM_BINS = 20
SKETCH_SIZE = 2048
SPEARMAN_SAMPLE = 10_000
#: Cells of the two matrices Pearson r is computed from (16 bytes each): bigger tables use a row sample.
PEARSON_CELLS = 16_000_000
SCATTER_SAMPLE = 800
SCATTER_COLUMNS = 4
MAX_CORRELATION_COLUMNS = 30
MAX_CONTINGENCY_VALUES = 20
MAX_CONTINGENCY_TABLES = 8
MAX_CLASSES = 50

# Thresholds of the alerts, named so the report can say what triggered them.
HIGH_CARDINALITY = 50
HIGH_CORRELATION = 0.9
MANY_MISSING = 0.2
SKEWED = 2.0
IMBALANCE_RATIO = 4.0
DOMINANT_SHARE = 0.9

_BOOLEAN_WORDS = {"true", "false", "yes", "no", "y", "n", "t", "f", "0", "1"}


def profile(data: Any, target: str | None = None, *, file_format: str | None = None, header: bool = True,
            seed: int = 0, on_attribute: Callable[[Attribute], None] | None = None) -> Profile:
    """Profile a pandas DataFrame, an Arrow table, or CSV/Parquet/JSON files (a path, folder or list).

    `on_attribute` is called on this thread with each attribute as soon as it is computed, while other
    columns are still being computed on worker threads: the report draws its figures there."""
    import duckdb

    table = to_arrow(data, file_format=file_format, header=header)
    if target is not None and target not in table.column_names:
        raise ValidationError(f"Target column {target!r} is not in the data; its columns are "
                              f"{', '.join(table.column_names)}.")
    con = duckdb.connect()
    try:
        con.register("data", table)
        return _Profiler(con, table, target, np.random.default_rng(seed)).run(on_attribute)
    finally:
        con.close()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _py(value: Any) -> Any:
    """A JSON-friendly Python value (dates as ISO strings, NumPy scalars unwrapped)."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


class _Profiler:
    def __init__(self, con, table: pa.Table, target: str | None, rng: np.random.Generator):
        self.con = con
        self.table = table
        self.target = target
        self.rng = rng
        #: A uniform sample of rows (all rows of small tables) and the numeric columns' values on it
        #: (float64, NaN for missing): Spearman ranks and the scatter matrix use it.
        self.sample = self._sample_index(table.num_rows, SPEARMAN_SAMPLE)
        self.samples: dict[str, np.ndarray] = {}

    def run(self, on_attribute: Callable[[Attribute], None] | None = None) -> Profile:
        from concurrent.futures import ThreadPoolExecutor, as_completed

        numeric = [n for n in self.table.column_names if _is_numeric(self.table.column(n).type)
                   and self.table.column(n).null_count < len(self.table.column(n))]
        correlated = numeric[:MAX_CORRELATION_COLUMNS]
        pearson_rows = min(self.table.num_rows, PEARSON_CELLS // max(len(correlated), 1))
        self.moments = _Moments(self._sample_index(self.table.num_rows, pearson_rows), correlated)
        done: dict[str, Attribute] = {}

        def finished(attribute: Attribute) -> None:
            done[attribute.name] = attribute
            if on_attribute is not None:
                on_attribute(attribute)

        # Numeric columns are sorted and scanned by NumPy on worker threads (it releases the GIL). This
        # thread meanwhile takes the other columns, whose values Arrow counts (releasing the GIL too) and
        # whose few queries go to DuckDB (its connection stays on this thread), then hands over the
        # numeric attributes as they finish.
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            pending = [pool.submit(self._attribute, n) for n in numeric]
            for name in self.table.column_names:
                if name not in numeric:
                    finished(self._attribute(name))
            for future in as_completed(pending):
                finished(future.result())
            attributes = [done[n] for n in self.table.column_names]
            # Correlations are matrix products and ranks (NumPy and pandas release the GIL): a worker computes
            # them while this thread sends the queries over whole rows to DuckDB.
            correlating = pool.submit(self._correlations, attributes)
            overview = self._overview(attributes)
            contingency = self._contingency(attributes)
            balance = self._class_balance(done[self.target]) if self.target else None
            correlations = correlating.result()
        scatter = self._scatter(attributes, correlations, balance)
        alerts = _alerts(overview, attributes, correlations, contingency, balance)
        return Profile(overview=overview, attributes=attributes, target=self.target, class_balance=balance,
                       correlations=correlations, contingency=contingency, scatter=scatter, alerts=alerts)

    def _sql(self, query: str, params: Iterable[Any] = ()) -> list[tuple]:
        return self.con.execute(query, list(params)).fetchall()

    # --- overall --------------------------------------------------------------------------------------
    def _overview(self, attributes: list[Attribute]) -> Overview:
        rows = self.table.num_rows
        kinds: dict[str, int] = {}
        for a in attributes:
            kinds[a.kind] = kinds.get(a.kind, 0) + 1
        return Overview(rows=rows, columns=self.table.num_columns, duplicate_rows=self._duplicate_rows(attributes),
                        missing_cells=sum(a.missing for a in attributes), memory_bytes=self.table.nbytes,
                        kinds=kinds)

    def _duplicate_rows(self, attributes: list[Attribute]) -> int:
        """Rows equal to an earlier row. Two equal rows agree on every column, so where a column's present
        values are all different, equal rows can only both miss it: the exact count needs only the rows
        missing every such column (usually none) and, else, only rows whose hash repeats."""
        if not self.table.num_rows or not self.table.num_columns:
            return 0
        unique = [a.name for a in attributes if a.count and a.distinct == a.count]
        where = " AND ".join(f"{_quote(c)} IS NULL" for c in unique) or "TRUE"
        subset = f"(SELECT * FROM data WHERE {where})"
        if unique and not self._sql(f"SELECT count(*) > 1 FROM {subset}")[0][0]:
            return 0
        row_hash = f"hash({', '.join(_quote(c) for c in self.table.column_names)})"
        candidates = (f"(SELECT * FROM {subset} WHERE {row_hash} IN (SELECT h FROM (SELECT {row_hash} AS h "
                      f"FROM {subset}) GROUP BY h HAVING count(*) > 1))")
        return int(self._sql(f"SELECT (SELECT count(*) FROM {candidates}) - "
                             f"(SELECT count(*) FROM (SELECT DISTINCT * FROM {candidates}))")[0][0])

    # --- one attribute --------------------------------------------------------------------------------
    def _attribute(self, name: str) -> Attribute:
        column = self.table.column(name)
        missing = column.null_count
        count = len(column) - missing
        kind_type = column.type
        if pa.types.is_dictionary(kind_type):
            kind_type = kind_type.value_type
        base = {"name": name, "physical_type": str(column.type), "count": count, "missing": missing}
        if count == 0:
            return Attribute(**base, kind=EMPTY, distinct=0, mode=None, most_frequent=[], least_frequent=[])
        if pa.types.is_boolean(kind_type):
            return self._categorical(base, _quote(name), BOOLEAN)
        if _is_numeric(kind_type):
            return self._numeric(base, column)
        if pa.types.is_temporal(kind_type):
            return self._datetime(base, _quote(name))
        if pa.types.is_string(kind_type) or pa.types.is_large_string(kind_type):
            return self._string(base, name)
        return self._categorical(base, f"CAST({_quote(name)} AS VARCHAR)", TEXT)

    def _frequencies(self, expr: str, top: int = CATEGORY_BUCKETS) -> tuple[int, list[ValueCount],
                                                                         list[ValueCount]]:
        """One GROUP BY: distinct count, most and least frequent values (ties: smallest value first)."""
        rows = self._sql(f"""
            WITH g AS MATERIALIZED (SELECT {expr} AS v, count(*) AS n FROM data WHERE {expr} IS NOT NULL
                                    GROUP BY 1)
            SELECT 0, NULL, count(*) FROM g
            UNION ALL (SELECT 1, v, n FROM g ORDER BY n DESC, v LIMIT {top})
            UNION ALL (SELECT 2, v, n FROM g ORDER BY n ASC, v LIMIT {LEAST_VALUES})""")
        distinct = next(n for part, _, n in rows if part == 0)
        top_values = sorted(((v, n) for part, v, n in rows if part == 1), key=lambda vn: (-vn[1], vn[0]))
        least = sorted(((v, n) for part, v, n in rows if part == 2), key=lambda vn: (vn[1], vn[0]))
        return (int(distinct), [ValueCount(_py(v), int(n)) for v, n in top_values],
                [ValueCount(_py(v), int(n)) for v, n in least])

    def _categorical(self, base: dict, expr: str, kind: str) -> Attribute:
        distinct, top, least = self._frequencies(expr)
        return Attribute(**base, kind=kind, distinct=distinct, mode=top[0].value, most_frequent=top,
                         least_frequent=least)

    def _string(self, base: dict, name: str) -> Attribute:
        col = _quote(name)
        distinct, top, least, (min_len, mean_len, max_len) = _string_frequencies(self.table.column(name))
        if distinct <= 2 and all(str(vc.value).strip().lower() in _BOOLEAN_WORDS for vc in top):
            kind = BOOLEAN
        elif self._looks_like_dates([vc.value for vc in top]):
            return self._datetime(base, f"TRY_CAST({col} AS TIMESTAMP)", frequencies=(distinct, top, least))
        else:
            kind = CATEGORICAL
        if kind == CATEGORICAL and distinct > HIGH_CARDINALITY and (
                distinct > 0.5 * base["count"] or mean_len >= 30):
            kind = TEXT
        return Attribute(**base, kind=kind, distinct=distinct, mode=top[0].value, most_frequent=top,
                         least_frequent=least, text=TextStats(int(min_len), float(mean_len), int(max_len)))

    def _looks_like_dates(self, values: list[str]) -> bool:
        """Judged on the most frequent values, which the frequency pass has already found."""
        if not values:
            return False
        parsed = self._sql("SELECT count(TRY_CAST(v AS TIMESTAMP)) FROM (SELECT unnest(?::VARCHAR[]) AS v)",
                           [values])[0][0]
        return parsed >= 0.95 * len(values)

    def _datetime(self, base: dict, expr: str, frequencies=None) -> Attribute:
        distinct, top, least = frequencies or self._frequencies(expr)
        epochs = self.con.execute(
            f"SELECT epoch({expr}::TIMESTAMP) AS e FROM data WHERE {expr} IS NOT NULL").fetchnumpy()["e"]
        epochs = np.asarray(epochs, dtype=np.float64)
        lo, hi = self._sql(f"SELECT min({expr}::TIMESTAMP), max({expr}::TIMESTAMP) FROM data")[0]
        counts, edges = np.histogram(epochs, bins=HISTOGRAM_BINS) if len(epochs) else (np.array([]), np.array([]))
        stats = DatetimeStats(min=_py(lo), max=_py(hi), histogram=Histogram(edges.tolist(), counts.tolist()))
        return Attribute(**base, kind=DATETIME, distinct=distinct, mode=top[0].value if top else None,
                         most_frequent=top, least_frequent=least, datetime=stats)

    def _numeric(self, base: dict, column: pa.ChunkedArray) -> Attribute:
        values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        self.samples[base["name"]] = values[self.sample]
        missing = np.isnan(values)
        integral = pa.types.is_integer(column.type)
        present = _counted_in_order(column) if integral else None
        if present is None:
            present = values[~missing]
            present.sort()
        total = float(present.sum())
        mean = total / len(present)
        powers = self.moments.fill(base["name"], values, missing, mean)
        stats, runs = _numeric_stats(present, integral, total, powers)
        distinct, top, least = runs
        cast = int if integral else float
        top = [ValueCount(cast(v), n) for v, n in top]
        least = [ValueCount(cast(v), n) for v, n in least]
        kind = BOOLEAN if distinct == 2 and {vc.value for vc in top} == {0, 1} else NUMERIC
        return Attribute(**base, kind=kind, distinct=distinct, mode=top[0].value, most_frequent=top,
                         least_frequent=least, numeric=stats)

    # --- relations between attributes -----------------------------------------------------------------
    def _correlations(self, attributes: list[Attribute]) -> Correlations | None:
        names = [a.name for a in attributes if a.numeric is not None and a.distinct > 1]
        names = names[:MAX_CORRELATION_COLUMNS]
        if len(names) < 2:
            return None
        pearson = self.moments.pearson(names)
        import pandas as pd

        frame = pd.DataFrame({n: self.samples[n] for n in names})
        spearman = frame.corr(method="spearman").to_numpy()

        def matrix(m: np.ndarray) -> list[list[float | None]]:
            return [[_finite(v) for v in r] for r in m.tolist()]

        return Correlations(columns=names, pearson=matrix(pearson), spearman=matrix(spearman),
                            pearson_rows=self.moments.rows, spearman_rows=len(self.sample))

    def _sample_index(self, rows: int, size: int) -> np.ndarray:
        if rows <= size:
            return np.arange(rows)
        return np.sort(self.rng.choice(rows, size=size, replace=False))

    def _contingency(self, attributes: list[Attribute]) -> list[Contingency]:
        from scipy.stats import chi2_contingency

        names = [a.name for a in attributes if 2 <= a.distinct <= MAX_CONTINGENCY_VALUES
                 and (a.kind in (CATEGORICAL, BOOLEAN) or a.name == self.target)]
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
        if self.target in names:  # pairs with the target first: they say most about the problem
            pairs.sort(key=lambda p: self.target not in p)
            pairs = [(b, a) if b == self.target else (a, b) for a, b in pairs]
        tables = []
        for a, b in pairs[:MAX_CONTINGENCY_TABLES]:
            qa, qb = _quote(a), _quote(b)
            rows = self._sql(f"SELECT {qa}, {qb}, count(*) FROM data WHERE {qa} IS NOT NULL AND {qb} IS NOT NULL "
                             "GROUP BY 1, 2")
            if not rows:
                continue
            row_values = _by_total(rows, 0)
            column_values = _by_total(rows, 1)
            counts = np.zeros((len(row_values), len(column_values)), dtype=np.int64)
            ri = {v: i for i, v in enumerate(row_values)}
            ci = {v: i for i, v in enumerate(column_values)}
            for va, vb, n in rows:
                counts[ri[va], ci[vb]] = n
            if min(counts.shape) > 1:
                chi2, p_value, _, _ = chi2_contingency(counts, correction=False)
                cramers_v = math.sqrt(chi2 / (counts.sum() * (min(counts.shape) - 1)))
            else:
                chi2, p_value, cramers_v = 0.0, 1.0, 0.0
            tables.append(Contingency(row=a, column=b, row_values=[_py(v) for v in row_values],
                                      column_values=[_py(v) for v in column_values], counts=counts.tolist(),
                                      chi2=float(chi2), p_value=float(p_value), cramers_v=float(cramers_v)))
        return tables

    def _class_balance(self, target: Attribute) -> ClassBalance:
        if target.numeric is not None and target.kind == NUMERIC and target.distinct > MAX_CONTINGENCY_VALUES:
            return ClassBalance(target=target.name, problem="regression", classes=[], imbalance_ratio=None,
                                histogram=target.numeric.histogram)
        col = _quote(target.name)
        rows = self._sql(f"SELECT {col}, count(*) AS n FROM data WHERE {col} IS NOT NULL GROUP BY 1 "
                         f"ORDER BY n DESC, 1 LIMIT {MAX_CLASSES}")
        classes = [ValueCount(_py(v), int(n)) for v, n in rows]
        ratio = classes[0].count / classes[-1].count if classes else None
        return ClassBalance(target=target.name, problem="classification", classes=classes, imbalance_ratio=ratio)

    def _scatter(self, attributes: list[Attribute], correlations: Correlations | None,
                 balance: ClassBalance | None) -> ScatterSample | None:
        """The numeric attributes most related to the target (or to each other), on a sample of rows."""
        if correlations is None:
            return None
        names = [n for n in correlations.columns if n != self.target]
        matrix = np.abs(np.nan_to_num(np.array(correlations.pearson, dtype=float)))
        np.fill_diagonal(matrix, 0)
        index_of = {n: i for i, n in enumerate(correlations.columns)}
        if self.target in index_of:
            score = {n: matrix[index_of[self.target], index_of[n]] for n in names}
        else:
            score = {n: matrix[index_of[n]].max() for n in names}
        chosen = sorted(names, key=lambda n: -score[n])[:SCATTER_COLUMNS]
        if len(chosen) < 2:
            return None
        chosen = [n for n in correlations.columns if n in chosen]  # keep the table's order
        complete = np.ones(len(self.sample), dtype=bool)
        for n in chosen:
            complete &= ~np.isnan(self.samples[n])
        rows = np.flatnonzero(complete)  # positions in the sample
        if len(rows) > SCATTER_SAMPLE:
            rows = np.sort(self.rng.choice(rows, size=SCATTER_SAMPLE, replace=False))
        hue = None
        if balance is not None and balance.problem == "classification" and len(balance.classes) <= 10:
            hue = [_py(v) for v in self.table.column(self.target).take(pa.array(self.sample[rows])).to_pylist()]
        return ScatterSample(columns=chosen, values=[self.samples[n][rows].tolist() for n in chosen], hue=hue)


class _Moments:
    """The numeric columns' deviations from their means, their squares and presence masks, as column-major
    matrices that the per-column threads fill. Each column's skewness and kurtosis come from its two
    columns; Pearson r of every pair over the rows where both are present (as pandas computes it) then takes
    four matrix products instead of one pass per pair."""

    def __init__(self, rows: np.ndarray, names: list[str]):
        #: The rows used: all of them, or a uniform sample when the matrices would be too big.
        self.row_index = rows
        self.rows = len(rows)
        self.index = {name: j for j, name in enumerate(names)}
        self.centred = np.empty((self.rows, len(names)), order="F")
        self.squares = np.empty((self.rows, len(names)), order="F")
        self.present = np.empty((self.rows, len(names)), order="F")

    def fill(self, name: str, values: np.ndarray, missing: np.ndarray, mean: float) -> tuple[float, float, float]:
        """Centre one column (its missing rows at zero, so they add nothing to the sums) and return the sums
        of the second, third and fourth powers of its deviations over all its present values."""
        j = self.index.get(name)
        whole = j is not None and self.rows == len(values)
        centred = self.centred[:, j] if whole else np.empty(len(values))
        squares = self.squares[:, j] if whole else np.empty(len(values))
        np.subtract(values, mean, out=centred)
        centred[missing] = 0.0  # centring also keeps the products below exact enough for r
        np.multiply(centred, centred, out=squares)
        # einsum rather than np.dot: OpenBLAS's threads, woken by every dot product, spin afterwards and take
        # the cores from the other column threads.
        powers = (float(squares.sum()), float(np.einsum("i,i->", squares, centred)),
                  float(np.einsum("i,i->", squares, squares)))
        if j is not None:
            if not whole:
                self.centred[:, j], self.squares[:, j] = centred[self.row_index], squares[self.row_index]
                missing = missing[self.row_index]
            np.logical_not(missing, out=self.present[:, j], casting="unsafe")
        return powers

    def pearson(self, names: list[str]) -> np.ndarray:
        columns = [self.index[n] for n in names]
        same = columns == list(range(self.centred.shape[1]))
        centred = self.centred if same else self.centred[:, columns]
        squares = self.squares if same else self.squares[:, columns]
        present = self.present if same else self.present[:, columns]
        n = present.T @ present
        sums = centred.T @ present  # sums[i, j]: sum of column i over the rows where j is present
        products = centred.T @ centred
        with np.errstate(invalid="ignore", divide="ignore"):
            covariance = products - sums * sums.T / n
            variance = squares.T @ present - sums ** 2 / n
            r = covariance / np.sqrt(variance * variance.T)
        r = np.clip(r, -1.0, 1.0)
        np.fill_diagonal(r, 1.0)
        return r


def _string_frequencies(column: pa.ChunkedArray, top: int = CATEGORY_BUCKETS):
    """Like `_Profiler._frequencies` for a text column, counted by Arrow (which releases the GIL while the
    numeric columns are computed on other threads): distinct count, most and least frequent values (ties:
    smallest value first) and the lengths of the present values (min, mean, max)."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    counted = pc.value_counts(column)
    groups = pa.table({"v": counted.field("values"), "n": counted.field("counts")})
    groups = groups.filter(pc.is_valid(groups.column("v")))
    if not groups.num_rows:
        return 0, [], [], (None, None, None)
    lengths = pc.utf8_length(groups.column("v"))
    present = pc.sum(groups.column("n")).as_py()
    mean_length = pc.sum(pc.multiply(pc.cast(lengths, pa.int64()), groups.column("n"))).as_py() / present
    length_range = pc.min_max(lengths).as_py()

    def ranked(order: str, limit: int) -> list[ValueCount]:
        picked = groups.take(pc.sort_indices(groups, [("n", order), ("v", "ascending")])[:limit])
        return [ValueCount(v, int(n)) for v, n in zip(picked.column("v").to_pylist(),
                                                      picked.column("n").to_pylist(), strict=True)]

    return (groups.num_rows, ranked("descending", top), ranked("ascending", LEAST_VALUES),
            (length_range["min"], mean_length, length_range["max"]))


def _counted_in_order(column: pa.ChunkedArray) -> np.ndarray | None:
    """An integer column's present values in order (as float64), by counting them when their range is no
    wider than their number: a counting pass instead of a comparison sort. None when the range is wider."""
    if pa.types.is_dictionary(column.type):
        return None
    values = pc.drop_null(column).to_numpy()
    if not len(values):
        return None
    low, high = int(values.min()), int(values.max())
    if high - low > len(values):
        return None
    counts = np.bincount((values - low).astype(np.intp, copy=False), minlength=high - low + 1)
    return np.repeat(np.arange(low, high + 1, dtype=np.float64), counts)


def _is_numeric(data_type: pa.DataType) -> bool:
    if pa.types.is_dictionary(data_type):
        data_type = data_type.value_type
    return pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or pa.types.is_decimal(data_type)


def _by_total(rows: list[tuple], position: int) -> list[Any]:
    totals: dict[Any, int] = {}
    for row in rows:
        totals[row[position]] = totals.get(row[position], 0) + row[2]
    return sorted(totals, key=lambda v: (-totals[v], str(v)))


def _quantile(sorted_values: np.ndarray, q: float) -> float:
    """Linear interpolation between the closest order statistics (pandas' and NumPy's default)."""
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return float(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction)


def _sorted_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """np.histogram's counts (last bin closed) from sorted values: one binary search per edge."""
    positions = np.searchsorted(values, edges, side="left")
    positions[-1] = np.searchsorted(values, edges[-1], side="right")
    return np.diff(positions)


def _numeric_stats(values: np.ndarray, integral: bool, total: float, powers: tuple[float, float, float]):
    """All statistics of one numeric column from its sorted present values, their sum and the sums of the
    second to fourth powers of their deviations from the mean."""
    n = len(values)
    quantiles = {f"{round(q * 100)}%": _quantile(values, q) for q in QUANTILES}
    q1, median, q3 = quantiles["25%"], quantiles["50%"], quantiles["75%"]
    iqr = q3 - q1
    fence_low, fence_high = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    below = int(np.searchsorted(values, fence_low, "left"))
    above_start = int(np.searchsorted(values, fence_high, "right"))
    mean = total / n
    # Skewness and excess kurtosis with the small-sample corrections pandas (and scipy's bias=False) apply.
    m2, m3, m4 = (p / n for p in powers)
    std = math.sqrt(m2 * n / (n - 1)) if n > 1 else None
    if std:
        z_low, z_high = mean - 3 * std, mean + 3 * std
        outliers_z = int(np.searchsorted(values, z_low, "left") + n - np.searchsorted(values, z_high, "right"))
        skewness = _finite(math.sqrt(n * (n - 1)) / (n - 2) * m3 / m2 ** 1.5) if n > 2 else None
        kurt = _finite((n - 1) * ((n + 1) * m4 / m2 ** 2 - 3 * (n - 1)) / ((n - 2) * (n - 3))) if n > 3 else None
    else:
        outliers_z, skewness, kurt = 0, None, None
    flier_values = np.unique(np.concatenate([values[:below][:25], values[above_start:][-25:]]))
    box = BoxStats(q1=q1, median=median, q3=q3, whisker_low=float(values[min(below, n - 1)]),
                   whisker_high=float(values[max(above_start - 1, 0)]), fliers=flier_values.tolist())

    changes = values[1:] != values[:-1]
    distinct = int(np.count_nonzero(changes)) + 1
    if distinct == n:  # all unique: every count is 1, ties go to the smallest values
        top = [(v, 1) for v in values[:TOP_VALUES]]
        least = [(v, 1) for v in values[:LEAST_VALUES]]
    else:
        starts = np.concatenate(([0], np.flatnonzero(changes) + 1))
        counts = np.diff(np.append(starts, n))
        top_idx = np.argsort(-counts, kind="stable")[:TOP_VALUES]
        least_idx = np.argsort(counts, kind="stable")[:LEAST_VALUES]
        top = [(values[starts[i]], int(counts[i])) for i in top_idx]
        least = [(values[starts[i]], int(counts[i])) for i in least_idx]

    lo, hi = float(values[0]), float(values[-1])
    if integral and hi - lo <= 40:  # one bar per integer value
        edges = np.arange(lo - 0.5, hi + 1.0, 1.0)
    else:
        edges = np.linspace(lo, hi, HISTOGRAM_BINS + 1) if hi > lo else np.array([lo - 0.5, lo + 0.5])
    hist = _sorted_histogram(values, edges)
    bucket_edges = np.linspace(lo, hi, 11) if hi > lo else np.array([lo, hi])
    buckets = _sorted_histogram(values, bucket_edges)
    sketch = values[np.round(np.linspace(0, n - 1, min(SKETCH_SIZE, n))).astype(np.int64)]
    stats = NumericStats(
        mean=mean, std=std, min=lo, max=hi, sum=total,
        zeros=int(np.searchsorted(values, 0.0, "right") - np.searchsorted(values, 0.0, "left")),
        negatives=int(np.searchsorted(values, 0.0, "left")), skewness=skewness, kurtosis=kurt,
        quantiles=quantiles, iqr=iqr, histogram=Histogram(edges.tolist(), hist.tolist()), box=box,
        iqr_fences=(fence_low, fence_high), outliers_iqr=below + n - above_start, outliers_zscore=outliers_z,
        buckets=Histogram(bucket_edges.tolist(), buckets.tolist()), sketch=sketch.tolist())
    return stats, (distinct, top, least)


def _alerts(overview: Overview, attributes: list[Attribute], correlations: Correlations | None,
            contingency: list[Contingency], balance: ClassBalance | None) -> list[Alert]:
    alerts: list[Alert] = []
    if overview.duplicate_rows:
        share = overview.duplicate_rows / overview.rows
        alerts.append(Alert("duplicates", [], f"{overview.duplicate_rows:,} duplicate rows ({share:.1%})."))
    for a in attributes:
        if a.kind == EMPTY:
            alerts.append(Alert("constant", [a.name], f"{a.name} has no values: every row is missing."))
            continue
        if a.distinct == 1:
            alerts.append(Alert("constant", [a.name], f"{a.name} has a single value ({a.mode!r})."))
        if a.missing_share >= MANY_MISSING:
            alerts.append(Alert("many_missing", [a.name],
                                f"{a.name} is missing in {a.missing:,} rows ({a.missing_share:.1%})."))
        if a.kind == CATEGORICAL and a.distinct > HIGH_CARDINALITY:
            alerts.append(Alert("high_cardinality", [a.name],
                                f"{a.name} has {a.distinct:,} distinct values (more than {HIGH_CARDINALITY})."))
        if a.numeric is not None and a.numeric.skewness is not None and abs(a.numeric.skewness) > SKEWED:
            alerts.append(Alert("skewed", [a.name], f"{a.name} is skewed (skewness {a.numeric.skewness:.2f})."))
        if (a.kind in (CATEGORICAL, BOOLEAN) and a.name != (balance.target if balance else None)
                and a.distinct > 1 and a.most_frequent[0].count >= DOMINANT_SHARE * a.count):
            alerts.append(Alert("imbalanced", [a.name], f"{a.name} is imbalanced: {a.mode!r} holds "
                                f"{a.most_frequent[0].count / a.count:.1%} of its values."))
    if balance is not None and balance.imbalance_ratio is not None and balance.imbalance_ratio >= IMBALANCE_RATIO:
        alerts.append(Alert("imbalanced", [balance.target], f"Target {balance.target} is imbalanced: its largest "
                            f"class is {balance.imbalance_ratio:.1f}× its smallest."))
    if correlations is not None:
        names = correlations.columns
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                r = correlations.pearson[i][j]
                if r is not None and abs(r) >= HIGH_CORRELATION:
                    alerts.append(Alert("highly_correlated", [names[i], names[j]],
                                        f"{names[i]} and {names[j]} are highly correlated (Pearson {r:.2f})."))
    for table in contingency:
        if table.cramers_v >= HIGH_CORRELATION:
            alerts.append(Alert("highly_correlated", [table.row, table.column], f"{table.row} and {table.column} "
                                f"are highly associated (Cramér's V {table.cramers_v:.2f})."))
    return alerts

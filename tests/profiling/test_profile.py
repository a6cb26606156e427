"""Profiles checked against pandas and SciPy on scikit-learn's bundled data sets."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn import datasets

from sagelab.errors import ValidationError
from sagelab.profiling import OUTPUT_FILES, profile, profile_to_folder, write_outputs
from sagelab.profiling.report import SECTIONS


def _messy(loader) -> pd.DataFrame:
    """A bundled data set with injected missing values, a categorical and a boolean column."""
    frame = loader(as_frame=True).frame
    rng = np.random.default_rng(7)
    numeric = [c for c in frame.columns if c != "target"]
    for column in numeric[:3]:
        frame.loc[rng.random(len(frame)) < 0.1, column] = np.nan
    first = numeric[3]
    frame["grade"] = pd.Series(np.where(frame[first] > frame[first].median(), "high", "low"), dtype=object)
    frame.loc[rng.random(len(frame)) < 0.05, "grade"] = None
    frame["colour"] = rng.choice(["red", "green", "blue"], len(frame))
    return frame


LOADERS = {"wine": datasets.load_wine, "breast_cancer": datasets.load_breast_cancer,
           "diabetes": datasets.load_diabetes}


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_numeric_statistics_match_pandas(name):
    frame = _messy(LOADERS[name])
    result = profile(frame, target="target")
    assert result.overview.rows == len(frame)
    assert result.overview.columns == frame.shape[1]
    assert result.overview.duplicate_rows == int(frame.duplicated().sum())
    assert result.overview.missing_cells == int(frame.isna().sum().sum())
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            continue
        series = frame[column].dropna()
        attribute = result.attribute(column)
        s = attribute.numeric
        assert attribute.count == len(series)
        assert attribute.missing == int(frame[column].isna().sum())
        assert attribute.distinct == series.nunique()
        assert s.mean == pytest.approx(series.mean())
        assert s.std == pytest.approx(series.std())
        assert (s.min, s.max) == (series.min(), series.max())
        assert s.sum == pytest.approx(series.sum())
        for q in (0.05, 0.25, 0.5, 0.75, 0.95):
            assert s.quantiles[f"{round(q * 100)}%"] == pytest.approx(series.quantile(q))
        assert s.skewness == pytest.approx(series.skew())
        assert s.kurtosis == pytest.approx(series.kurt())
        assert attribute.mode == series.mode().iloc[0]
        counts = series.value_counts()
        assert attribute.most_frequent[0].count == counts.iloc[0]
        assert [vc.count for vc in attribute.most_frequent] == counts.iloc[:len(attribute.most_frequent)].tolist()
        assert sum(s.histogram.counts) == len(series) == sum(s.buckets.counts)
        q1, q3 = series.quantile(0.25), series.quantile(0.75)
        low, high = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
        assert s.outliers_iqr == int(((series < low) | (series > high)).sum())
        assert s.outliers_zscore == int(((series - series.mean()).abs() / series.std() > 3).sum())
        assert s.box.whisker_low == series[series >= low].min()
        assert s.box.whisker_high == series[series <= high].max()


def test_integer_columns_counted_or_sorted_match_pandas():
    """Integer columns whose range is no wider than their count are put in order by counting, the others by
    sorting: both give pandas' statistics (digits' pixel intensities 0-16, and a wide-ranged product)."""
    digits = datasets.load_digits(as_frame=True).frame
    rng = np.random.default_rng(3)
    narrow = digits["pixel_0_4"].astype("Int64")
    narrow[rng.random(len(narrow)) < 0.1] = pd.NA
    wide = (digits["pixel_0_4"] * 1_000_003 + digits["pixel_1_3"] * 7 - 5_000_000).astype("int64")
    frame = pd.DataFrame({"narrow": narrow, "wide": wide})
    result = profile(frame)
    for column in frame.columns:
        series = frame[column].dropna().astype("int64")
        attribute = result.attribute(column)
        s = attribute.numeric
        assert attribute.distinct == series.nunique()
        assert (s.min, s.max, s.sum) == (series.min(), series.max(), series.sum())
        for q in (0.05, 0.25, 0.5, 0.75, 0.95):
            assert s.quantiles[f"{round(q * 100)}%"] == pytest.approx(series.quantile(q))
        counts = series.value_counts(sort=False).sort_index()
        top = counts.sort_values(ascending=False, kind="stable").iloc[:10]
        assert [(vc.value, vc.count) for vc in attribute.most_frequent[:10]] == list(top.items())
        least = counts.sort_values(kind="stable").iloc[:5]
        assert [(vc.value, vc.count) for vc in attribute.least_frequent] == list(least.items())
        assert s.sketch == sorted(s.sketch) and (s.sketch[0], s.sketch[-1]) == (s.min, s.max)
        assert s.skewness == pytest.approx(series.skew()) and s.kurtosis == pytest.approx(series.kurt())


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_correlations_match_pandas(name):
    frame = _messy(LOADERS[name])
    result = profile(frame)
    c = result.correlations
    numeric = frame[c.columns]
    np.testing.assert_allclose(np.array(c.pearson, dtype=float), numeric.corr().to_numpy(), atol=1e-9)
    np.testing.assert_allclose(np.array(c.spearman, dtype=float), numeric.corr(method="spearman").to_numpy(),
                               atol=1e-9)
    assert c.spearman_rows == len(frame)


def test_categorical_statistics_contingency_and_class_balance():
    frame = _messy(datasets.load_wine)
    result = profile(frame, target="target")
    grade = result.attribute("grade")
    assert grade.kind == "categorical"
    assert (grade.count, grade.missing) == (frame["grade"].notna().sum(), frame["grade"].isna().sum())
    counts = frame["grade"].value_counts()
    assert {vc.value: vc.count for vc in grade.most_frequent} == counts.to_dict()
    assert grade.mode == counts.index[0]
    balance = result.class_balance
    assert balance.problem == "classification"
    assert {vc.value: vc.count for vc in balance.classes} == frame["target"].value_counts().to_dict()
    assert balance.imbalance_ratio == pytest.approx(frame["target"].value_counts().max()
                                                    / frame["target"].value_counts().min())
    table = next(t for t in result.contingency if {t.row, t.column} == {"target", "grade"})
    assert table.row == "target"  # pairs with the target put it first
    crosstab = pd.crosstab(frame["target"], frame["grade"])
    for i, row_value in enumerate(table.row_values):
        for j, column_value in enumerate(table.column_values):
            assert table.counts[i][j] == crosstab.loc[row_value, column_value]
    chi2, p_value, _, _ = sps.chi2_contingency(crosstab.to_numpy(), correction=False)
    assert (table.chi2, table.p_value) == (pytest.approx(chi2), pytest.approx(p_value))
    assert result.scatter is not None and 2 <= len(result.scatter.columns) <= 4
    assert set(result.scatter.hue) <= set(frame["target"])


def test_kinds_and_alerts():
    rng = np.random.default_rng(1)
    n = 400
    x = rng.normal(size=n)
    frame = pd.DataFrame({
        "x": x, "x_copy": 2 * x + 0.001 * rng.normal(size=n), "constant": 1.0,
        "skewed": rng.lognormal(0, 1.5, n), "mostly_missing": np.where(rng.random(n) < 0.5, np.nan, 1.5),
        "ids": [f"customer-{i}" for i in range(n)], "flag": rng.choice(["yes", "no"], n),
        "when": pd.date_range("2021-01-01", periods=n, freq="h"), "dates_as_text": ["2021-03-04"] * n,
        "label": np.where(rng.random(n) < 0.9, 0, 1),
    })
    frame.loc[5] = frame.loc[4]
    result = profile(frame, target="label")
    kinds = {a.name: a.kind for a in result.attributes}
    assert kinds == {"x": "numeric", "x_copy": "numeric", "constant": "numeric", "skewed": "numeric",
                     "mostly_missing": "numeric", "ids": "text", "flag": "boolean", "when": "datetime",
                     "dates_as_text": "datetime", "label": "boolean"}
    alerts = {(a.kind, tuple(a.columns)) for a in result.alerts}
    assert ("constant", ("constant",)) in alerts
    assert ("highly_correlated", ("x", "x_copy")) in alerts
    assert ("skewed", ("skewed",)) in alerts
    assert ("many_missing", ("mostly_missing",)) in alerts
    assert ("imbalanced", ("label",)) in alerts
    assert ("duplicates", ()) in alerts
    assert result.attribute("when").datetime.min == "2021-01-01T00:00:00"


def test_high_cardinality_alert():
    frame = pd.DataFrame({"code": [f"c{i % 80}" for i in range(1000)], "v": np.arange(1000.0)})
    result = profile(frame)
    assert result.attribute("code").kind == "categorical"
    assert any(a.kind == "high_cardinality" and a.columns == ["code"] for a in result.alerts)


def test_files_in_every_format(tmp_path):
    frame = _messy(datasets.load_diabetes)
    frame.to_csv(tmp_path / "data.csv", index=False)
    frame.to_parquet(tmp_path / "data.parquet", index=False)
    (tmp_path / "parts").mkdir()
    frame.iloc[:200].to_json(tmp_path / "parts" / "a.jsonl", orient="records", lines=True)
    frame.iloc[200:].to_json(tmp_path / "parts" / "b.jsonl", orient="records", lines=True)
    (tmp_path / "parts" / "_SUCCESS").write_text("")
    for source in (tmp_path / "data.csv", tmp_path / "data.parquet", tmp_path / "parts"):
        result = profile(source, target="target")
        assert result.overview.rows == len(frame)
        assert result.attribute("bmi").numeric.mean == pytest.approx(frame["bmi"].mean())
        assert result.attribute("age").missing == frame["age"].isna().sum()
    frame.to_csv(tmp_path / "plain.csv", index=False, header=False)
    result = profile(tmp_path / "plain.csv", header=False)
    assert [a.name for a in result.attributes][:2] == ["_c0", "_c1"]


def test_bad_inputs_are_named():
    with pytest.raises(ValidationError, match="Target column 'nope'"):
        profile(pd.DataFrame({"a": [1, 2]}), target="nope")
    with pytest.raises(ValidationError, match="does not exist"):
        profile("/no/such/data.csv")


def test_model_monitor_baseline_files(tmp_path):
    frame = _messy(datasets.load_wine)
    result = profile(frame, target="target")
    write_outputs(result, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(OUTPUT_FILES)
    statistics = json.loads((tmp_path / "statistics.json").read_text())
    assert statistics["version"] == 0.0
    assert statistics["dataset"] == {"item_count": len(frame)}
    features = {f["name"]: f for f in statistics["features"]}
    assert list(features) == list(frame.columns)
    alcohol = features["alcohol"]
    assert alcohol["inferred_type"] == "Fractional"
    num = alcohol["numerical_statistics"]
    assert num["common"] == {"num_present": int(frame["alcohol"].notna().sum()),
                             "num_missing": int(frame["alcohol"].isna().sum())}
    assert num["mean"] == pytest.approx(frame["alcohol"].mean())
    assert num["std_dev"] == pytest.approx(frame["alcohol"].std(ddof=0))
    assert (num["min"], num["max"]) == (frame["alcohol"].min(), frame["alcohol"].max())
    kll = num["distribution"]["kll"]
    assert len(kll["buckets"]) == 10
    assert set(kll["buckets"][0]) == {"lower_bound", "upper_bound", "count"}
    assert sum(b["count"] for b in kll["buckets"]) == num["common"]["num_present"]
    assert kll["sketch"]["parameters"] == {"c": 0.64, "k": 2048.0}
    assert kll["sketch"]["data"][0] == sorted(kll["sketch"]["data"][0])
    assert features["target"]["inferred_type"] == "Integral"
    grade = features["grade"]
    assert grade["inferred_type"] == "String"
    assert grade["string_statistics"]["distinct_count"] == 2
    buckets = grade["string_statistics"]["distribution"]["categorical"]["buckets"]
    assert {b["value"]: b["count"] for b in buckets} == frame["grade"].value_counts().to_dict()

    constraints = json.loads((tmp_path / "constraints.json").read_text())
    assert constraints["version"] == 0.0
    by_name = {f["name"]: f for f in constraints["features"]}
    assert by_name["alcohol"]["completeness"] == pytest.approx(frame["alcohol"].notna().mean())
    assert by_name["alcohol"]["num_constraints"] == {"is_non_negative": True}
    assert by_name["colour"]["string_constraints"] == {"domains": ["blue", "green", "red"]}
    config = constraints["monitoring_config"]
    assert config["evaluate_constraints"] == "Enabled"
    assert {"comparison_threshold", "comparison_method"} <= set(config["distribution_constraints"])


def test_report_holds_every_section(tmp_path):
    frame = _messy(datasets.load_breast_cancer)
    write_outputs(profile(frame, target="target"), tmp_path)
    page = (tmp_path / "report.html").read_text()
    for anchor, title in SECTIONS:
        assert f'<section id="{anchor}"><h2>{title}</h2>' in page
    assert page.count('<img src="data:image/png;base64,') >= frame.shape[1]
    # Self-contained: nothing is fetched from anywhere.
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script" not in page and "<link" not in page
    for word in ("Duplicate rows", "Memory", "Quantile 25%", "Most frequent", "Least frequent", "Imbalance ratio",
                 "Pearson", "Spearman", "Cramér", "IQR fence low", "|z| &gt; 3"):
        assert word in page


def test_figures_drawn_while_profiling_give_the_same_report(tmp_path):
    """profile_to_folder draws each attribute's figure as the profiler hands the attribute over; the files
    it writes are those of profile + write_outputs (but for the report's time stamp)."""
    frame = _messy(datasets.load_wine)
    handed_over: list[str] = []
    result = profile(frame, target="target", on_attribute=lambda a: handed_over.append(a.name))
    assert sorted(handed_over) == sorted(frame.columns)
    write_outputs(result, tmp_path / "apart")
    profile_to_folder(frame, tmp_path / "together", target="target")

    def without_time(path):
        return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "", path.read_text())

    for name in OUTPUT_FILES:
        assert without_time(tmp_path / "together" / name) == without_time(tmp_path / "apart" / name), name


def test_report_renders_in_headless_chromium(tmp_path):
    import shutil

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium); .ci/run installs it")
    playwright = pytest.importorskip("playwright.sync_api", reason="the test extra's playwright is not installed")
    frame = _messy(datasets.load_wine)
    write_outputs(profile(frame, target="target"), tmp_path)
    problems: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
        try:
            page = browser.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda r: problems.append(f"fetched {r.url}")
                    if not r.url.startswith(("file:", "data:")) else None)
            page.goto((tmp_path / "report.html").as_uri())
            for anchor, _ in SECTIONS:
                assert page.locator(f"section#{anchor}").is_visible()
            broken = page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth == 0)"
                                   ".length")
            assert broken == 0
            assert page.evaluate("document.images.length") >= frame.shape[1]
        finally:
            browser.close()
    assert problems == []


def test_big_tables_correlate_on_a_uniform_sample(monkeypatch):
    import sagelab.profiling.compute as compute

    monkeypatch.setattr(compute, "PEARSON_CELLS", 3 * 4_000)
    monkeypatch.setattr(compute, "SPEARMAN_SAMPLE", 2_000)
    rng = np.random.default_rng(5)
    x = rng.normal(size=20_000)
    frame = pd.DataFrame({"x": x, "y": x + rng.normal(size=20_000), "z": rng.normal(size=20_000)})
    frame.loc[rng.random(20_000) < 0.05, "y"] = np.nan
    c = profile(frame).correlations
    assert (c.pearson_rows, c.spearman_rows) == (4_000, 2_000)
    np.testing.assert_allclose(np.array(c.pearson), frame.corr().to_numpy(), atol=0.05)
    np.testing.assert_allclose(np.array(c.spearman), frame.corr(method="spearman").to_numpy(), atol=0.06)

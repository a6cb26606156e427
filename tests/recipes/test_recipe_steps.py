"""Each recipe step against scikit-learn's own transformer (or pandas, where scikit-learn has none)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import datasets, decomposition, impute, linear_model, preprocessing
from sklearn.feature_extraction.text import TfidfVectorizer

from sagelab.recipes.recipe import parse_recipe
from sagelab.recipes.runner import fit_recipe


def run(frame: pd.DataFrame, *steps: dict, target: str | None = None):
    """Fit the steps on `frame` (no split: every row trains); returns (result frame, transformer, extras)."""
    recipe = parse_recipe({"target": target, "steps": list(steps)})
    result, parts, transformer, extras = fit_recipe(recipe, frame)
    assert set(parts) == {"train"}
    return result, transformer, extras


@pytest.fixture(scope="module")
def wine() -> pd.DataFrame:
    frame = datasets.load_wine(as_frame=True).frame
    rng = np.random.default_rng(3)
    for column in ("alcohol", "magnesium", "hue"):
        frame.loc[rng.random(len(frame)) < 0.15, column] = np.nan
    return frame


NUMERIC = ["alcohol", "malic_acid", "ash", "magnesium", "hue", "proline"]


@pytest.mark.parametrize(("method", "estimator"), [
    ("standard", preprocessing.StandardScaler), ("minmax", preprocessing.MinMaxScaler),
    ("maxabs", preprocessing.MaxAbsScaler), ("robust", preprocessing.RobustScaler)])
def test_scalers(wine, method, estimator):
    result, transformer, _ = run(wine, {"step": "scale", "columns": NUMERIC, "method": method})
    expected = estimator().fit_transform(wine[NUMERIC].to_numpy())
    np.testing.assert_allclose(result[NUMERIC].to_numpy(), expected, rtol=1e-12, atol=1e-12)
    fresh = wine.iloc[:7]
    positions = [transformer.feature_columns.index(c) for c in NUMERIC]
    np.testing.assert_allclose(transformer.transform(fresh)[:, positions],
                               estimator().fit(wine[NUMERIC].to_numpy()).transform(fresh[NUMERIC].to_numpy()))


def test_normalizer_and_default_columns(wine):
    complete = wine.drop(columns=["alcohol", "magnesium", "hue"])
    result, _, _ = run(complete, {"step": "scale", "method": "normalizer"}, target="target")
    columns = [c for c in complete.columns if c != "target"]
    expected = preprocessing.Normalizer().fit_transform(complete[columns].to_numpy())
    np.testing.assert_allclose(result[columns].to_numpy(), expected, rtol=1e-12)
    assert result["target"].tolist() == complete["target"].astype(float).tolist()


@pytest.mark.parametrize(("strategy", "sklearn_strategy", "fill"), [
    ("mean", "mean", None), ("median", "median", None), ("mode", "most_frequent", None),
    ("zero", "constant", 0), ("constant", "constant", -7.5)])
def test_impute_like_simple_imputer(wine, strategy, sklearn_strategy, fill):
    step = {"step": "impute", "columns": ["alcohol", "magnesium"], "strategy": strategy, "indicator": True}
    if strategy == "constant":
        step["value"] = fill
    result, _, _ = run(wine, step)
    imputer = impute.SimpleImputer(strategy=sklearn_strategy, fill_value=fill, add_indicator=True)
    expected = imputer.fit_transform(wine[["alcohol", "magnesium"]].to_numpy())
    got = result[["alcohol", "magnesium", "alcohol_missing", "magnesium_missing"]].to_numpy()
    np.testing.assert_allclose(got, expected)


def test_impute_text_mode_and_by_regression(wine):
    frame = wine.copy()
    frame["colour"] = pd.Series(np.where(frame["ash"] > 2.4, "red", "white"), dtype=object)
    frame.loc[::9, "colour"] = None
    result, _, _ = run(frame, {"step": "impute", "columns": ["colour"], "strategy": "mode"},
                       {"step": "one_hot", "columns": ["colour"]})
    mode = frame["colour"].mode()[0]
    assert result[f"colour_{mode}"].sum() == (frame["colour"] == mode).sum() + frame["colour"].isna().sum()
    assert (result[["colour_red", "colour_white"]].sum(axis=1) == 1).all()

    frame = frame.drop(columns="colour")
    result, _, _ = run(frame, {"step": "impute", "columns": ["alcohol"], "strategy": "regression",
                               "predictors": ["proline", "color_intensity"]})
    known = frame["alcohol"].notna()
    model = linear_model.LinearRegression().fit(frame.loc[known, ["proline", "color_intensity"]],
                                                frame.loc[known, "alcohol"])
    np.testing.assert_allclose(result.loc[~known, "alcohol"],
                               model.predict(frame.loc[~known, ["proline", "color_intensity"]]), rtol=1e-10)
    assert (result.loc[known, "alcohol"] == frame.loc[known, "alcohol"]).all()


def test_drop_missing_rows_and_columns(wine):
    result, transformer, _ = run(wine, {"step": "drop_missing", "columns": ["alcohol", "hue"]})
    pd.testing.assert_index_equal(result.index, wine.dropna(subset=["alcohol", "hue"]).index)
    frame = wine.assign(mostly_missing=np.where(np.arange(len(wine)) % 4 == 0, 1.0, np.nan))
    result, transformer, _ = run(frame, {"step": "drop_missing", "axis": "columns", "threshold": 0.5})
    assert "mostly_missing" not in result.columns and "alcohol" in result.columns
    assert "mostly_missing" not in transformer.feature_columns


def test_select_drop_and_deduplicate(wine):
    frame = pd.concat([wine, wine.iloc[:10]], ignore_index=True)
    result, transformer, _ = run(frame, {"step": "deduplicate"}, {"step": "select_columns", "columns": NUMERIC},
                                 {"step": "drop_columns", "columns": ["ash"]}, target="target")
    assert len(result) == len(frame.drop_duplicates())
    assert list(result.columns) == ["target"] + [c for c in NUMERIC if c != "ash"]
    assert transformer.feature_columns == [c for c in NUMERIC if c != "ash"]
    # deduplicate is for training data only: new rows are all transformed.
    assert transformer.transform(frame.drop(columns="target")).shape == (len(frame), len(NUMERIC) - 1)


@pytest.mark.parametrize(("method", "action"), [("iqr", "clip"), ("zscore", "clip"), ("iqr", "drop"),
                                                ("zscore", "drop")])
def test_outliers(wine, method, action):
    columns = ["malic_acid", "magnesium"]
    result, transformer, _ = run(wine, {"step": "outliers", "columns": columns, "method": method, "action": action})
    data = wine[columns]
    if method == "iqr":
        q1, q3 = data.quantile(0.25), data.quantile(0.75)
        low, high = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
    else:
        low, high = data.mean() - 3 * data.std(), data.mean() + 3 * data.std()
    if action == "clip":
        pd.testing.assert_frame_equal(result[columns], data.clip(low, high, axis=1))
    else:
        outside = ((data < low) | (data > high)).any(axis=1)
        assert outside.sum() > 0
        pd.testing.assert_index_equal(result.index, wine.index[~outside])


def test_ordinal_binary_and_one_hot():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"size": rng.choice(["S", "M", "L", "N/A"], 200),
                          "smoker": rng.choice(["yes", "no"], 200),
                          "colour": rng.choice(["red", "green", "blue"], 200), "x": rng.normal(size=200)})
    frame.loc[::13, "colour"] = None
    result, transformer, _ = run(
        frame, {"step": "ordinal", "column": "size", "mapping": {"S": 5, "M": 10, "L": 20, "N/A": 0}},
        {"step": "binary", "column": "smoker"}, {"step": "one_hot", "columns": ["colour"]})
    assert result["size"].tolist() == frame["size"].map({"S": 5, "M": 10, "L": 20, "N/A": 0}).astype(float).tolist()
    assert result["smoker"].tolist() == preprocessing.LabelBinarizer().fit_transform(frame["smoker"]).ravel().tolist()
    encoder = preprocessing.OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    present = frame[["colour"]].dropna()
    encoder.fit(present)
    expected = encoder.transform(frame[["colour"]].fillna("__none__"))
    names = [f"colour_{c}" for c in encoder.categories_[0]]
    np.testing.assert_array_equal(result[names].to_numpy(), expected)
    # Unknown categories at inference: all zeros, as handle_unknown="ignore" gives.
    row = transformer.transform([{"size": "M", "smoker": "yes", "colour": "purple", "x": 1.0}])
    assert row.tolist() == [[10.0, 1.0, 1.0, 0.0, 0.0, 0.0]]


def test_log_and_bins(wine):
    result, _, _ = run(wine, {"step": "log", "columns": ["proline", "magnesium"]})
    expected = preprocessing.FunctionTransformer(np.log1p).fit_transform(wine[["proline", "magnesium"]].to_numpy())
    np.testing.assert_allclose(result[["proline", "magnesium"]].to_numpy(), expected, rtol=1e-12)
    result, _, _ = run(wine, {"step": "log", "columns": ["proline"], "base": 10, "offset": 0})
    np.testing.assert_allclose(result["proline"], np.log10(wine["proline"]))

    for strategy in ("uniform", "quantile"):
        result, _, _ = run(wine, {"step": "bin", "columns": ["proline", "ash"], "bins": 4, "strategy": strategy})
        binner = preprocessing.KBinsDiscretizer(n_bins=4, encode="ordinal", strategy=strategy,
                                                quantile_method="linear")
        np.testing.assert_array_equal(result[["proline", "ash"]].to_numpy(),
                                      binner.fit_transform(wine[["proline", "ash"]].to_numpy()))
    result, _, _ = run(wine, {"step": "bin", "columns": ["ash"], "bins": [0, 2, 2.5, 4]})
    np.testing.assert_array_equal(result["ash"].to_numpy(), np.digitize(wine["ash"], [2, 2.5]).astype(float))


def test_tfidf():
    docs = ["the quick brown fox", "the lazy dog", "quick quick dog", "a brown dog and a fox", "", "lazy fox"] * 5
    frame = pd.DataFrame({"text": docs, "y": np.arange(len(docs)) % 2})
    result, transformer, _ = run(frame, {"step": "tfidf", "column": "text", "max_features": 6}, target="y")
    vectorizer = TfidfVectorizer(max_features=6)
    expected = vectorizer.fit_transform(docs).toarray()
    names = [f"text_tfidf_{t}" for t in vectorizer.get_feature_names_out()]
    np.testing.assert_allclose(result[names].to_numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(transformer.transform([["brown fox"]]), vectorizer.transform(["brown fox"]).toarray(),
                               rtol=1e-12)


def test_pca_and_tsne(wine):
    complete = wine.dropna()
    columns = ["malic_acid", "ash", "proline", "flavanoids"]
    result, transformer, extras = run(complete, {"step": "scale", "columns": columns},
                                      {"step": "pca", "columns": columns, "n_components": 2},
                                      {"step": "tsne", "columns": ["pca_1", "pca_2"], "sample": 60},
                                      target="target")
    scaled = preprocessing.StandardScaler().fit_transform(complete[columns].to_numpy())
    expected = decomposition.PCA(n_components=2).fit_transform(scaled)
    np.testing.assert_allclose(result[["pca_1", "pca_2"]].to_numpy(), expected, rtol=1e-9, atol=1e-9)
    assert not set(columns) & set(result.columns)
    embedding = pd.read_csv(__import__("io").BytesIO(extras["tsne/embedding.csv"]))
    assert list(embedding.columns) == ["tsne_1", "tsne_2", "target"] and len(embedding) == 60
    assert extras["tsne/tsne.png"].startswith(b"\x89PNG")


def test_dates_in_mixed_formats():
    frame = pd.DataFrame({"signup": ["2021-03-04", "04/05/2022", "Jan 02, 2020", "2020-02-29T10:00:00", None,
                                     "not a date"], "y": [0, 1, 0, 1, 0, 1]})
    result, transformer, _ = run(frame, {"step": "parse_dates", "column": "signup",
                                         "formats": ["%Y-%m-%d", "%d/%m/%Y", "%b %d, %Y", "%Y-%m-%dT%H:%M:%S"]},
                                 {"step": "drop_columns", "columns": ["signup"]}, target="y")
    assert result["signup_year"].tolist()[:4] == [2021, 2022, 2020, 2020]
    assert result["signup_month"].tolist()[:4] == [3, 5, 1, 2]
    assert result["signup_day"].tolist()[:4] == [4, 4, 2, 29]
    assert result["signup_weekday"].tolist()[:4] == [3, 2, 3, 5]  # Monday is 0
    assert result.iloc[4:][["signup_year"]].isna().all().all()
    keep, _, _ = run(frame.iloc[:4], {"step": "parse_dates", "column": "signup",
                                      "formats": ["%Y-%m-%d", "%d/%m/%Y", "%b %d, %Y", "%Y-%m-%dT%H:%M:%S"],
                                      "features": ["year"]}, {"step": "drop_columns", "columns": ["signup"]})
    assert list(keep.columns) == ["y", "signup_year"]


def test_stratified_split_80_10_10():
    from sagelab.recipes.recipe import parse_recipe as parse

    frame = datasets.load_breast_cancer(as_frame=True).frame
    recipe = parse({"target": "target", "steps": [{"step": "scale"}, {"step": "split", "stratify": True}]})
    result, parts, transformer, _ = fit_recipe(recipe, frame)
    counts = parts.value_counts()
    assert counts["train"] == pytest.approx(0.8 * len(frame), abs=1)
    assert counts["validation"] == pytest.approx(0.1 * len(frame), abs=1)
    share = frame["target"].mean()
    for name in ("train", "validation", "test"):
        assert frame.loc[parts == name, "target"].mean() == pytest.approx(share, abs=0.03)
    # The scaler learnt from the training rows only.
    train = frame.loc[parts == "train"].drop(columns="target")
    mean = preprocessing.StandardScaler().fit(train.to_numpy()).mean_
    np.testing.assert_allclose(transformer.steps[0][1]["fitted"]["mean_"], mean)

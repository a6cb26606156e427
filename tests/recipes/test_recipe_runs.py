"""Whole recipe runs: validation before any data is read, channels, the artifact in a fresh process, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from sagelab.cli import main
from sagelab.recipes.recipe import parse_recipe
from sagelab.recipes.runner import prepare
from sagelab.recipes.spec import RecipeError
from sagelab.recipes.transformer import RecipeTransformer

RECIPE = {
    "target": "churned",
    "steps": [
        {"step": "deduplicate"},
        {"step": "drop_missing", "columns": ["churned"]},
        {"step": "parse_dates", "column": "signup", "drop": True},
        {"step": "impute", "columns": ["age"], "strategy": "median", "indicator": True},
        {"step": "impute", "columns": ["income"], "strategy": "regression", "predictors": ["age", "visits"]},
        {"step": "outliers", "columns": ["income"], "method": "iqr", "action": "clip"},
        {"step": "log", "columns": ["income"]},
        {"step": "ordinal", "column": "size", "mapping": {"S": 5, "M": 10, "L": 20, "N/A": 0}},
        {"step": "binary", "column": "smoker", "positive": "yes"},
        {"step": "one_hot", "columns": ["plan"]},
        {"step": "tfidf", "column": "review", "max_features": 8},
        {"step": "bin", "columns": ["visits"], "bins": 3, "strategy": "quantile"},
        {"step": "scale", "columns": ["age", "income"], "method": "robust"},
        {"step": "pca", "columns": ["age", "income", "size"], "n_components": 2, "keep_original": True},
        {"step": "split", "stratify": True, "seed": 3},
    ],
}


def messy_customers(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.normal(40, 12, n).round(1), "income": rng.lognormal(10, 0.8, n).round(2),
        "visits": rng.poisson(6, n), "size": rng.choice(["S", "M", "L", "N/A"], n),
        "plan": rng.choice(["basic", "pro", "team"], n), "smoker": rng.choice(["yes", "no"], n),
        "signup": rng.choice(["2021-03-04", "04/05/2022", "Jan 02, 2020", "2019-12-31"], n),
        "review": rng.choice(["great fast service", "slow and buggy", "fine", "great value", "buggy app"], n),
        "churned": (rng.random(n) < 0.3).astype(int),
    })
    frame.loc[rng.random(n) < 0.1, "age"] = np.nan
    frame.loc[rng.random(n) < 0.1, "income"] = np.nan
    return pd.concat([frame, frame.iloc[:5]], ignore_index=True)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prepared")
    frame = messy_customers()
    frame.to_csv(folder / "customers.csv", index=False)
    (folder / "recipe.json").write_text(json.dumps(RECIPE))
    result = prepare(parse_recipe(RECIPE), folder / "customers.csv", folder / "out")
    return folder, frame, result


def test_channels_are_label_first_csv_without_header(prepared):
    folder, frame, result = prepared
    assert sum(result.rows.values()) == len(frame.drop_duplicates())
    assert result.rows["train"] == pytest.approx(0.8 * sum(result.rows.values()), abs=1)
    for channel in ("train", "validation", "test"):
        data = np.loadtxt(folder / "out" / channel / f"{channel}.csv", delimiter=",", ndmin=2)
        assert data.shape == (result.rows[channel], 1 + len(result.feature_columns))
        assert set(np.unique(data[:, 0])) <= {0.0, 1.0}
    summary = json.loads((folder / "out" / "summary.json").read_text())
    assert summary["feature_columns"] == result.feature_columns and summary["label_first"]
    assert "plan_pro" in result.feature_columns and "review_tfidf_great" in result.feature_columns


def test_artifact_reloaded_in_a_fresh_process_transforms_identically(prepared, tmp_path):
    folder, frame, result = prepared
    new_rows = messy_customers(30, seed=9).drop(columns="churned")
    new_rows.loc[0, "plan"] = "enterprise"  # unseen category
    new_rows.loc[1, "signup"] = "31.12.2020"  # a format the recipe does not list
    new_rows.to_json(tmp_path / "rows.json", orient="records")
    expected = result.transformer.transform(new_rows.to_dict("records"))
    script = textwrap.dedent(f"""
        import json, numpy as np
        from sagelab.recipes.transformer import RecipeTransformer
        transformer = RecipeTransformer.load({str(folder / "out" / "transformer" / "transformer.json")!r})
        rows = json.load(open({str(tmp_path / "rows.json")!r}))
        np.save({str(tmp_path / "out.npy")!r}, transformer.transform(rows))
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    assert expected.shape == (len(new_rows), len(result.feature_columns))
    assert not np.isnan(expected[:, result.feature_columns.index("plan_pro")]).any()


def test_artifact_reproduces_the_training_channel(prepared):
    folder, frame, result = prepared
    transformer = RecipeTransformer.load(folder / "out" / "transformer" / "transformer.json")
    assert "pickle" not in (folder / "out" / "transformer" / "transformer.json").read_text()
    channel = np.loadtxt(folder / "out" / "train" / "train.csv", delimiter=",")
    # The rows of the train channel, found by their position in the deduplicated input.
    deduplicated = frame.drop_duplicates().reset_index(drop=True)
    features = transformer.transform(deduplicated.drop(columns="churned"))
    matches = {tuple(np.round(row, 9)) for row in features}
    assert all(tuple(np.round(row, 9)) in matches for row in channel[:, 1:])
    body = deduplicated.drop(columns="churned").iloc[:3].to_csv(header=False, index=False).encode()
    rows = np.loadtxt(__import__("io").StringIO(transformer.transform_csv(body).decode()), delimiter=",")
    np.testing.assert_allclose(rows, features[:3])


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r["steps"].append({"step": "frobnicate"}), "step 16 (frobnicate): unknown step 'frobnicate'"),
    (lambda r: r["steps"][5].update(method="tukey"), "step 6 (outliers): field 'method' must be one of iqr, zscore"),
    (lambda r: r["steps"][3].update(columns="age"), "step 4 (impute): field 'columns' must be a list"),
    (lambda r: r["steps"][12].update(colums=["age"]), "step 13 (scale): unknown field(s) 'colums'"),
    (lambda r: r["steps"][12].update(columns=["agee"]), "step 13 (scale): unknown column 'agee'"),
    (lambda r: r["steps"][5].update(columns=["plan"]), "step 6 (outliers): column 'plan' is text, expected a numeric"),
    (lambda r: r["steps"].insert(3, {"step": "drop_columns", "columns": ["age"]}),
     "step 5 (impute): unknown column 'age'"),
    (lambda r: r["steps"].insert(0, {"step": "drop_columns", "columns": ["churned"]}),
     "step 1 (drop_columns): cannot drop the target column 'churned'"),
    (lambda r: r["steps"].pop(9), "column(s) 'plan' are not numeric"),
    (lambda r: r["steps"].insert(0, {"step": "split"}), "step 1 (split): split must be the last step"),
    (lambda r: r.update(target="label"), "recipe: unknown column 'label'"),
])
def test_bad_recipes_fail_before_any_row_is_read(tmp_path, change, message):
    recipe = json.loads(json.dumps(RECIPE))
    change(recipe)
    frame = messy_customers(50)
    frame.to_parquet(tmp_path / "data.parquet", index=False)
    # Break every data page but keep the footer: the schema is readable, the rows are not.
    raw = bytearray((tmp_path / "data.parquet").read_bytes())
    footer = int.from_bytes(raw[-8:-4], "little") + 8
    raw[4:len(raw) - footer] = b"\xff" * (len(raw) - footer - 4)
    (tmp_path / "data.parquet").write_bytes(bytes(raw))
    with pytest.raises(RecipeError) as caught:
        prepare(parse_recipe(recipe), tmp_path / "data.parquet", tmp_path / "out")
    assert message in caught.value.message
    assert not (tmp_path / "out").exists()


def test_cli_prepare_reads_and_writes_the_embedded_lake(tmp_path, capsys):
    from sagelab.platform import Platform
    from sagelab.settings import load_settings

    home = tmp_path / "home"
    blobs = Platform(load_settings({"home": str(home)})).blobs
    blobs.create_bucket("lake")
    frame = messy_customers(120)
    blobs.put("lake", "raw/customers/part-0.csv", [frame.iloc[:60].to_csv(index=False).encode()])
    blobs.put("lake", "raw/customers/part-1.csv", [frame.iloc[60:].to_csv(index=False).encode()])
    blobs.put("lake", "recipes/churn.json", [json.dumps(RECIPE).encode()])
    code = main(["prepare", "--recipe", "s3://lake/recipes/churn.json", "--input", "s3://lake/raw/customers/",
                 "--output", "s3://lake/prepared/", "--home", str(home)])
    out = capsys.readouterr().out
    assert code == 0, out
    keys = {info.key for info in blobs.list("lake", "prepared/")}
    assert {"prepared/train/train.csv", "prepared/validation/validation.csv", "prepared/test/test.csv",
            "prepared/transformer/transformer.json", "prepared/summary.json"} <= keys
    assert "train: " in out

    bad = dict(RECIPE, steps=[{"step": "scale", "columns": ["nope"]}])
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    code = main(["prepare", "--recipe", str(tmp_path / "bad.json"), "--input", "s3://lake/raw/customers/",
                 "--output", str(tmp_path / "never"), "--home", str(home)])
    assert code == 2
    assert "step 1 (scale): unknown column 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_recordio_protobuf_channels(tmp_path):
    from sagelab.algorithms.first_party.recordio import read_matrix

    frame = messy_customers(200)
    recipe = dict(RECIPE, output_format="recordio-protobuf")
    result = prepare(parse_recipe(recipe), frame, tmp_path / "out")
    x, y = read_matrix([(tmp_path / "out" / "train" / "train.recordio").read_bytes()])
    assert x.shape == (result.rows["train"], len(result.feature_columns))
    assert set(np.unique(y)) <= {0.0, 1.0}
    csv = prepare(parse_recipe(RECIPE), frame, tmp_path / "csv")
    expected = np.loadtxt(tmp_path / "csv" / "train" / "train.csv", delimiter=",")
    np.testing.assert_allclose(x, np.nan_to_num(expected[:, 1:]).astype(np.float32))
    np.testing.assert_array_equal(y, expected[:, 0])
    assert csv.feature_columns == result.feature_columns


def test_errors_found_while_fitting_name_the_step():
    frame = messy_customers(60)
    with pytest.raises(RecipeError, match=r"step 1 \(pca\): column 'age' has \d+ missing values"):
        prepare(parse_recipe({"target": "churned", "steps": [
            {"step": "pca", "columns": ["age", "visits"], "n_components": 1},
            {"step": "drop_columns", "columns": ["size", "plan", "smoker", "signup", "review"]}]}), frame, None)
    frame.loc[0, "churned"] = 7  # a class of one row cannot be stratified
    with pytest.raises(RecipeError, match=r"step 2 \(split\): .*least populated class"):
        prepare(parse_recipe({"target": "churned", "steps": [
            {"step": "drop_columns", "columns": ["size", "plan", "smoker", "signup", "review"]},
            {"step": "split", "stratify": True}]}), frame, None)

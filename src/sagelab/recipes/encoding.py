"""Feature steps: encodings, scaling, transforms, binning, TF-IDF, PCA, t-SNE and the split.

scikit-learn fits every learnt step. Its fitted state is kept as JSON; where the estimator's transform
reads only public fitted attributes (scalers, PCA, KBinsDiscretizer, TfidfVectorizer), the estimator is
rebuilt from them and its own `transform` is used, so reloaded artifacts compute exactly what it computes.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pandas as pd

from sagelab.recipes.spec import BOOLEAN, NUMERIC, STRING, Fields, Schema
from sagelab.recipes.step import FitContext, Step, array, numeric_matrix, require_complete, to_json


class Ordinal(Step):
    """Map each value to a number the user chooses, e.g. {"S": 5, "M": 10, "L": 20, "N/A": 0}."""

    kind = "ordinal"

    def parse(self, f: Fields) -> None:
        self.column = f.column()
        self.mapping = f.get("mapping", dict, required=True)
        if not self.mapping or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                       for v in self.mapping.values()):
            raise f.error(f"field 'mapping' must map values to numbers, got {self.mapping!r}.")
        self.missing = f.number("missing")
        self.unknown = f.number("unknown")

    def named_columns(self) -> list[str]:
        return [self.column]

    def check(self, schema: Schema, target: str | None) -> None:
        schema.require(self.at, [self.column])
        schema.kinds[self.column] = NUMERIC

    def fit(self, frame: pd.DataFrame, ctx: FitContext) -> dict[str, Any]:
        present = frame[self.column].dropna().astype(str)
        unmapped = sorted(set(present) - set(self.mapping))
        if unmapped and self.unknown is None:
            raise self.error(f"column {self.column!r} has values the mapping does not name: "
                             f"{', '.join(map(repr, unmapped[:5]))}; add them or set 'unknown'.")
        return {}

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        values = frame[self.column]
        text = values.astype(str)
        mapped = text.map({str(k): float(v) for k, v in self.mapping.items()}).astype("float64")
        fallback = np.nan if self.unknown is None else float(self.unknown)
        mapped = mapped.where(mapped.notna() | values.isna(), fallback)
        if self.missing is not None:
            mapped = mapped.where(values.notna(), float(self.missing))
        frame[self.column] = mapped
        return frame


class OneHot(Step):
    kind = "one_hot"
    default_kinds = (STRING, BOOLEAN)

    def parse(self, f: Fields) -> None:
        self.columns = f.columns()
        self.max_categories = f.number("max_categories", None, low=1)

    def check(self, schema: Schema, target: str | None) -> None:
        super().check(schema, target)
        columns = self.columns or [c for c, k in schema.kinds.items() if k in self.default_kinds and c != target]
        for c in columns:
            schema.kinds.pop(c, None)
            schema.open_prefixes.append(f"{c}_")

    def fit(self, frame: pd.DataFrame, ctx: FitContext) -> dict[str, Any]:
        from sklearn.preprocessing import OneHotEncoder

        columns = self.resolve(frame, ctx.target)
        categories = {}
        for c in columns:
            values = frame[[c]].astype(str).where(frame[[c]].notna(), None).dropna()
            encoder = OneHotEncoder(handle_unknown="ignore", max_categories=self.max_categories and int(
                self.max_categories)).fit(values)
            known = [str(v) for v in encoder.categories_[0]]
            if self.max_categories and encoder.infrequent_categories_[0] is not None:
                rare = {str(v) for v in encoder.infrequent_categories_[0]}
                known = [v for v in known if v not in rare]
            categories[c] = known
        return {"columns": columns, "categories": categories}

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
        new = {}
        for c in params["columns"]:
            text = frame[c].astype(str).where(frame[c].notna(), None)
            for value in params["categories"][c]:
                new[f"{c}_{value}"] = (text == value).astype("float64")
        return pd.concat([frame.drop(columns=params["columns"]), pd.DataFrame(new, index=frame.index)], axis=1)


class Binary(Step):
    """Two-valued column as 0/1: 1 for `positive` (default: the larger value, as LabelBinarizer does)."""

    kind = "binary"

    def parse(self, f: Fields) -> None:
        self.column = f.column()
        self.positive = f.get("positive", (str, int, float, bool))

    def named_columns(self) -> list[str]:
        return [self.column]

    def check(self, schema: Schema, target: str | None) -> None:
        schema.require(self.at, [self.column])
        schema.kinds[self.column] = NUMERIC

    def fit(self, frame: pd.DataFrame, ctx: FitContext) -> dict[str, Any]:
        from sklearn.preprocessing import LabelBinarizer

        values = frame[self.column].dropna().astype(str)
        if self.positive is not None:
            return {"positive": str(self.positive)}
        if values.nunique() != 2:
            raise self.error(f"column {self.column!r} has {values.nunique()} distinct values, expected 2 "
                             "(or name the 'positive' value).")
        return {"positive": str(LabelBinarizer().fit(values).classes_[1])}

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        values = frame[self.column]
        frame[self.column] = (values.astype(str) == params["positive"]).astype("float64").where(values.notna())
        return frame


SCALERS = {
    "standard": ("StandardScaler", ("mean_", "scale_", "var_")),
    "minmax": ("MinMaxScaler", ("min_", "scale_", "data_min_", "data_max_", "data_range_")),
    "maxabs": ("MaxAbsScaler", ("max_abs_", "scale_")),
    "robust": ("RobustScaler", ("center_", "scale_")),
    "normalizer": ("Normalizer", ()),
}


def _rebuild(estimator, attributes: dict[str, Any], n_features: int):
    for name, value in attributes.items():
        setattr(estimator, name, array(value) if isinstance(value, list) else value)
    estimator.n_features_in_ = n_features
    return estimator


class Scale(Step):
    kind = "scale"
    default_kinds = (NUMERIC,)

    def parse(self, f: Fields) -> None:
        self.columns = f.columns()
        self.method = f.choice("method", tuple(SCALERS), "standard")

    def estimator(self):
        import sklearn.preprocessing as pre

        return getattr(pre, SCALERS[self.method][0])()

    def fit(self, frame: pd.DataFrame, ctx: FitContext) -> dict[str, Any]:
        columns = self.resolve(frame, ctx.target)
        x = numeric_matrix(self, frame, columns)
        if self.method == "normalizer":
            require_complete(self, frame, columns)
        scaler = self.estimator().fit(x)
        return {"columns": columns, "fitted": {a: to_json(getattr(scaler, a)) for a in SCALERS[self.method][1]}}

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
        columns = params["columns"]
        scaler = _rebuild(self.estimator(), params["fitted"], len(columns))
        frame = frame.copy()
        frame[columns] = scaler.transform(frame[columns].to_numpy(dtype=np.float64, na_value=np.nan))
        return frame


class Log(Step):
    """log(x + offset) with base e, 2 or 10 (offset 1 by default: log1p)."""

    kind = "log"
    default_kinds = (NUMERIC,)

    def parse(self, f: Fields) -> None:
        self.columns = f.columns()
        self.base = f.get("base", (int, float, str), "e")
        if self.base not in ("e", 2, 10):
            raise f.error(f"field 'base' must be \"e\", 2 or 10, got {self.base!r}.")
        self.offset = f.number("offset", 1.0)

    def fit(self, frame: pd.DataFrame, ctx: FitContext) -> dict[str, Any]:
        columns = self.resolve(frame, ctx.target)
        x = numeric_matrix(self, frame, columns)
        for j, c in enumerate(columns):
            bad = int((x[:, j] + self.offset <= 0).sum())
            if bad:
                raise self.error(f"column {c!r} has {bad} values ≤ {-self.offset:g}, where log(x + {self.offset:g}) "
                                 "is undefined; raise 'offset' or clip the column first.")
        return {"columns": columns}

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
        from sklearn.preprocessing import FunctionTransformer

        log = {"e": np.log, 2: np.log2, 10: np.log10}[self.base]
        offset = self.offset
        columns = params["columns"]
        x = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan) + offset
        frame = frame.copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            out = FunctionTransformer(log).fit_transform(x)
        frame[columns] = np.where(x > 0, out, np.nan)
        return frame


class Bin(Step):
    """Bin numbers into intervals (ordinal codes): equal width, quantiles, k-means, or the user's edges."""

    kind = "bin"
    default_kinds = (NUMERIC,)

    def parse(self, f: Fields) -> None:
        self.columns = f.columns()
        self.bins = f.get("bins", (int, list), 5)
        if isinstance(self.bins, int) and self.bins < 2 or isinstance(self.bins, list) and (
                len(self.bins) < 2 or sorted(self.bins) != self.bins):
            raise f.error(f"field 'bins' must be a count ≥ 2 or a sorted list of edges, got {self.bins!r}.")
        self.strategy = f.choice("strategy", ("uniform", "quantile", "kmeans"), "quantile")

    def fit(self, frame: pd.DataFrame, ctx: FitContext) -> dict[str, Any]:
        from sklearn.preprocessing import KBinsDiscretizer

        columns = self.resolve(frame, ctx.target)
        x = numeric_matrix(self, frame, columns)
        if isinstance(self.bins, list):
            edges = [list(map(float, self.bins))] * len(columns)
        else:
            edges = []
            for j in range(len(columns)):
                present = x[~np.isnan(x[:, j]), j:j + 1]
                binner = KBinsDiscretizer(n_bins=self.bins, encode="ordinal", strategy=self.strategy,
                                          quantile_method="linear")
                edges.append(binner.fit(present).bin_edges_[0].tolist())
        return {"columns": columns, "edges": edges}

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
        from sklearn.preprocessing import KBinsDiscretizer

        frame = frame.copy()
        for c, edges in zip(params["columns"], params["edges"], strict=True):
            binner = KBinsDiscretizer(n_bins=len(edges) - 1, encode="ordinal")
            binner.n_features_in_ = 1
            binner.bin_edges_ = np.array([np.array(edges, dtype=np.float64)], dtype=object)
            binner.n_bins_ = np.array([len(edges) - 1])
            values = frame[c].to_numpy(dtype=np.float64, na_value=np.nan)
            present = ~np.isnan(values)
            out = np.full(len(values), np.nan)
            if present.any():
                out[present] = binner.transform(values[present].reshape(-1, 1))[:, 0]
            frame[c] = out
        return frame


class Tfidf(Step):
    """TF-IDF weights of the most frequent terms of a text column, one column per term."""

    kind = "tfidf"

    def parse(self, f: Fields) -> None:
        self.column = f.column()
        self.max_features = int(f.number("max_features", 50, low=1))
        ngrams = f.get("ngram_range", list, [1, 1])
        if len(ngrams) != 2 or not all(isinstance(n, int) and n >= 1 for n in ngrams) or ngrams[0] > ngrams[1]:
            raise f.error(f"field 'ngram_range' must be [min, max] with 1 ≤ min ≤ max, got {ngrams!r}.")
        self.ngram_range = tuple(ngrams)
        self.stop_words = f.choice("stop_words", ("english", "none"), "none")
        self.sublinear_tf = f.get("sublinear_tf", bool, False)

    def named_columns(self) -> list[str]:
        return [self.column]

    def check(self, schema: Schema, target: str | None) -> None:
        schema.require(self.at, [self.column], (STRING,))
        del schema.kinds[self.column]
        schema.open_prefixes.append(f"{self.column}_tfidf_")

    def vectorizer(self):
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(max_features=self.max_features, ngram_range=self.ngram_range,
                               stop_words=None if self.stop_words == "none" else self.stop_words,
                               sublinear_tf=self.sublinear_tf)

    def fit(self, frame: pd.DataFrame, ctx: FitContext) -> dict[str, Any]:
        vectorizer = self.vectorizer().fit(frame[self.column].fillna("").astype(str))
        return {"vocabulary": {t: int(i) for t, i in vectorizer.vocabulary_.items()}, "idf": to_json(vectorizer.idf_)}

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
        vectorizer = self.vectorizer()
        vectorizer.vocabulary_ = dict(params["vocabulary"])
        vectorizer.idf_ = array(params["idf"])
        weights = vectorizer.transform(frame[self.column].fillna("").astype(str)).toarray()
        terms = sorted(params["vocabulary"], key=params["vocabulary"].get)
        new = pd.DataFrame(weights, index=frame.index, columns=[f"{self.column}_tfidf_{t}" for t in terms])
        return pd.concat([frame.drop(columns=[self.column]), new], axis=1)


class Pca(Step):
    kind = "pca"
    default_kinds = (NUMERIC,)

    def parse(self, f: Fields) -> None:
        self.columns = f.columns()
        self.n_components = int(f.number("n_components", 2, low=1))
        self.prefix = f.get("prefix", str, "pca")
        self.keep_original = f.get("keep_original", bool, False)
        self.whiten = f.get("whiten", bool, False)

    def check(self, schema: Schema, target: str | None) -> None:
        super().check(schema, target)
        if not self.keep_original:
            for c in self.columns or [c for c, k in schema.kinds.items() if k == NUMERIC and c != target]:
                schema.kinds.pop(c, None)
        for i in range(self.n_components):
            schema.add(self.at, f"{self.prefix}_{i + 1}", NUMERIC)

    def estimator(self):
        from sklearn.decomposition import PCA

        return PCA(n_components=self.n_components, whiten=self.whiten)

    def fit(self, frame: pd.DataFrame, ctx: FitContext) -> dict[str, Any]:
        columns = self.resolve(frame, ctx.target)
        if self.n_components > len(columns):
            raise self.error(f"n_components is {self.n_components} but only {len(columns)} columns are given.")
        require_complete(self, frame, columns)
        pca = self.estimator().fit(numeric_matrix(self, frame, columns))
        return {"columns": columns, "fitted": {a: to_json(getattr(pca, a)) for a in (
            "components_", "mean_", "explained_variance_", "explained_variance_ratio_")},
            "n_components_": int(pca.n_components_)}

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
        columns = params["columns"]
        pca = _rebuild(self.estimator(), params["fitted"], len(columns))
        pca.n_components_ = params["n_components_"]
        x = frame[columns].to_numpy(dtype=np.float64, na_value=np.nan)
        complete = ~np.isnan(x).any(axis=1)
        out = np.full((len(frame), pca.n_components_), np.nan)
        if complete.any():
            out[complete] = pca.transform(x[complete])
        new = pd.DataFrame(out, index=frame.index, columns=[f"{self.prefix}_{i + 1}" for i in range(out.shape[1])])
        base = frame if self.keep_original else frame.drop(columns=columns)
        return pd.concat([base, new], axis=1)


class Tsne(Step):
    """A 2-D t-SNE embedding of a sample of the training rows, for plots (tsne/embedding.csv, tsne/tsne.png).
    t-SNE cannot place new rows, so it leaves the channels unchanged."""

    kind = "tsne"
    training_only = True
    default_kinds = (NUMERIC,)

    def parse(self, f: Fields) -> None:
        self.columns = f.columns()
        self.perplexity = f.number("perplexity", 30.0, low=1.0)
        self.sample = int(f.number("sample", 2000, low=10))

    def fit(self, frame: pd.DataFrame, ctx: FitContext) -> dict[str, Any]:
        from sklearn.manifold import TSNE

        columns = self.resolve(frame, ctx.target)
        x = numeric_matrix(self, frame, columns)
        rows = np.flatnonzero(~np.isnan(x).any(axis=1))
        if len(rows) > self.sample:
            rows = np.sort(np.random.default_rng(ctx.seed).choice(rows, self.sample, replace=False))
        if len(rows) < 5:
            raise self.error("fewer than 5 training rows have every column present.")
        perplexity = min(self.perplexity, (len(rows) - 1) / 3)
        embedding = TSNE(n_components=2, perplexity=perplexity, random_state=ctx.seed, init="pca").fit_transform(
            x[rows])
        table = pd.DataFrame({"tsne_1": embedding[:, 0], "tsne_2": embedding[:, 1]})
        hue = None
        if ctx.target and ctx.target in frame.columns:
            hue = frame[ctx.target].to_numpy()[rows]
            table[ctx.target] = hue
        ctx.extras["tsne/embedding.csv"] = table.to_csv(index=False).encode()
        ctx.extras["tsne/tsne.png"] = _tsne_plot(embedding, hue)
        return {"columns": columns}

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
        return frame


def _tsne_plot(embedding: np.ndarray, hue: np.ndarray | None) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 4.2), dpi=90)
    ax = fig.add_axes((0.08, 0.08, 0.7, 0.86))
    if hue is not None and len(set(map(str, hue))) <= 10:
        for i, value in enumerate(sorted(set(map(str, hue)))):
            mask = np.array([str(h) == value for h in hue])
            ax.scatter(embedding[mask, 0], embedding[mask, 1], s=4, color=f"C{i}", label=value, alpha=0.7)
        fig.legend(loc="upper right", fontsize=7, frameon=False)
    else:
        ax.scatter(embedding[:, 0], embedding[:, 1], s=4, alpha=0.7)
    ax.set_title("t-SNE")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


class Split(Step):
    """Train/validation/test partitions, shuffled or stratified by the target. Chosen before anything is
    fitted, so that every learnt step sees the training rows only."""

    kind = "split"
    training_only = True

    def parse(self, f: Fields) -> None:
        self.train = f.number("train", 0.8, low=0.0, high=1.0)
        self.validation = f.number("validation", 0.1, low=0.0, high=1.0)
        self.test = f.number("test", 0.1, low=0.0, high=1.0)
        if self.train <= 0 or not math.isclose(self.train + self.validation + self.test, 1.0, abs_tol=1e-9):
            raise f.error(f"fractions train, validation and test must add up to 1 with train > 0; got "
                          f"{self.train}, {self.validation}, {self.test}.")
        self.stratify = f.get("stratify", bool, False)
        self.seed = int(f.number("seed", 0, low=0))

    def check(self, schema: Schema, target: str | None) -> None:
        if self.stratify and target is None:
            raise self.error("stratify needs the recipe's 'target'.")

    def assign(self, frame: pd.DataFrame, target: str | None) -> pd.Series:
        from sklearn.model_selection import train_test_split

        index = np.arange(len(frame))
        labels = frame[target].astype(str).to_numpy() if self.stratify else None
        held = self.validation + self.test
        if held == 0:
            return pd.Series("train", index=frame.index)
        train, rest = train_test_split(index, test_size=held, stratify=labels, random_state=self.seed)
        parts = pd.Series("train", index=frame.index)
        if self.test == 0:
            parts.iloc[rest] = "validation"
        elif self.validation == 0:
            parts.iloc[rest] = "test"
        else:
            validation, test = train_test_split(rest, test_size=self.test / held, random_state=self.seed,
                                                stratify=labels[rest] if labels is not None else None)
            parts.iloc[validation] = "validation"
            parts.iloc[test] = "test"
        return parts

    def fit(self, frame: pd.DataFrame, ctx: FitContext) -> dict[str, Any]:
        return {}

    def apply(self, params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
        return frame

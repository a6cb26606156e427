"""LDA's model and its artifact: scikit-learn's variational Bayes LDA, stored as arrays.

`model.npz` holds the topic-word pseudo-counts `components` (num_topics x feature_dim, the variational
parameter lambda) and their `exp_dirichlet_component` (exp E[log beta]); `model.json` holds the Dirichlet
priors. A predictor rebuilds scikit-learn's estimator from them (no pickle) and infers each document's topic
mixture with the same E-step that trained it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.first_party.artifact import read_artifact, write_artifact

FORMAT = "sagelab-lda/1"


class LDAModel:
    def __init__(self, estimator: Any, info: dict[str, Any] | None = None):
        self.estimator = estimator
        self.info = info or {}

    @property
    def num_topics(self) -> int:
        return int(self.estimator.components_.shape[0])

    @property
    def feature_dim(self) -> int:
        return int(self.estimator.components_.shape[1])

    def topic_mixture(self, x: Any) -> np.ndarray:
        """Each document's topic proportions (rows sum to 1), float32."""
        return self.estimator.transform(x).astype(np.float32)

    def topic_word(self) -> np.ndarray:
        """Each topic's distribution over the vocabulary (rows sum to 1)."""
        components = self.estimator.components_
        return components / components.sum(axis=1, keepdims=True)

    def per_word_log_likelihood(self, x: Any) -> float:
        """The variational bound on log p(x), per word: -log(perplexity)."""
        return float(-np.log(self.estimator.perplexity(x)))

    def save(self, model_dir: Path) -> None:
        est = self.estimator
        write_artifact(model_dir, FORMAT,
                       {"components": est.components_, "exp_dirichlet_component": est.exp_dirichlet_component_},
                       {"num_topics": self.num_topics, "feature_dim": self.feature_dim,
                        "doc_topic_prior": float(est.doc_topic_prior_),
                        "topic_word_prior": float(est.topic_word_prior_), **self.info})

    @classmethod
    def load(cls, model_dir: Path) -> LDAModel:
        meta, arrays = read_artifact(model_dir, FORMAT, "LDA")
        components = arrays["components"]
        if components.shape != (meta.get("num_topics"), meta.get("feature_dim")):
            raise ValueError(f"{model_dir}: expected {meta.get('num_topics')} x {meta.get('feature_dim')} topic "
                             f"components, found {components.shape}.")
        estimator = estimator_for(meta["num_topics"], meta["doc_topic_prior"], meta["topic_word_prior"])
        estimator.components_ = components
        estimator.exp_dirichlet_component_ = arrays["exp_dirichlet_component"]
        estimator.doc_topic_prior_ = meta["doc_topic_prior"]
        estimator.topic_word_prior_ = meta["topic_word_prior"]
        estimator.n_features_in_ = meta["feature_dim"]
        estimator.n_batch_iter_ = estimator.n_iter_ = int(meta.get("iterations", 1))
        info = {k: v for k, v in meta.items()
                if k not in ("num_topics", "feature_dim", "doc_topic_prior", "topic_word_prior")}
        return cls(estimator, info)


def estimator_for(num_topics: int, doc_topic_prior: float, topic_word_prior: float, **options: Any) -> Any:
    from sklearn.decomposition import LatentDirichletAllocation

    return LatentDirichletAllocation(n_components=num_topics, doc_topic_prior=doc_topic_prior,
                                     topic_word_prior=topic_word_prior, learning_method="batch", random_state=0,
                                     **options)

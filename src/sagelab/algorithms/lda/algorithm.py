"""SageMaker's LDA (`lda` images): Latent Dirichlet Allocation over bag-of-words documents.

AWS fits LDA by a spectral method (tensor decomposition, then alternating least squares); sagelab fits the same
model by batch variational Bayes (scikit-learn's `LatentDirichletAllocation`), so topics agree in meaning, not in
digits. How the documented hyperparameters map:
- num_topics -> n_components; alpha0 / num_topics -> the symmetric document-topic prior (alpha0 is the sum of
  the Dirichlet parameters, as on AWS); the topic-word prior is 1 / num_topics.
- max_iterations caps the passes of variational EM; it stops earlier once the perplexity of the training corpus,
  checked every 10 passes, changes by less than 0.1.
- max_restarts and tol steer AWS's ALS and have no counterpart: accepted, logged, unused.
- mini_batch_size is the number of documents (the SageMaker SDK sets it): checked against the channel and
  logged.
- With at least 10,000 documents the E-step runs on every core (scikit-learn's n_jobs); on fewer, one.

Metrics: with a `test` channel, `#quality_metric: host=algo-1, test pwll <score>=...`, the per-word
log-likelihood (the variational bound on log p(test documents) over their number of words, i.e.
-log perplexity): `test:pwll`, to maximize.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sagelab.algorithms.base import DataError, MetricDefinition, TrainingContext
from sagelab.algorithms.first_party import training as onep
from sagelab.algorithms.first_party.bag_of_words import read_documents
from sagelab.algorithms.lda.hyperparameters import SCHEMA
from sagelab.algorithms.lda.model import LDAModel, estimator_for
from sagelab.algorithms.lda.predictor import LDAPredictor

EVALUATE_EVERY = 10
PERPLEXITY_TOLERANCE = 0.1
PARALLEL_DOCUMENTS = 10_000


class LDAAlgorithm:
    name = "lda"
    image_repositories = ("lda",)
    hyperparameters = SCHEMA
    channels = onep.train_and_test_channels()
    metrics = (*onep.progress_and_throughput_metrics(),
               MetricDefinition("test:pwll", onep.quality_metric_regex("test", "pwll", "score"), "Maximize"))

    def train(self, ctx: TrainingContext) -> None:
        hp = SCHEMA.validate({key: value for key, value in ctx.hyperparameters.items() if value is not None})
        started = time.perf_counter()
        x = read_documents(ctx, "train", hp["feature_dim"])
        assert x is not None  # a required channel
        test = read_documents(ctx, "test", hp["feature_dim"])
        documents = x.shape[0]
        ctx.print(f"Read {documents} documents over a vocabulary of {x.shape[1]} words "
                  f"({int(x.sum())} words in all) in {time.perf_counter() - started:.3f} s.")
        if x.sum() == 0:
            raise DataError("Channel 'train': every document is empty (all word counts are 0).")
        if hp["mini_batch_size"] != documents:
            ctx.print(f"mini_batch_size={hp['mini_batch_size']} is the number of documents on AWS; the train "
                      f"channel holds {documents}.")
        ctx.print(f"max_restarts={hp['max_restarts']} and tol={hp['tol']:g} steer AWS's spectral method; "
                  "variational inference does not use them.")
        topics = hp["num_topics"]
        jobs = (os.cpu_count() or 1) if documents >= PARALLEL_DOCUMENTS else 1
        estimator = estimator_for(topics, hp["alpha0"] / topics, 1.0 / topics, max_iter=hp["max_iterations"],
                                  evaluate_every=EVALUATE_EVERY, perp_tol=PERPLEXITY_TOLERANCE, n_jobs=jobs)
        started = time.perf_counter()
        throughput = onep.Throughput()
        estimator.fit(x)
        throughput.report(ctx, documents * estimator.n_iter_)
        onep.progress_metric(ctx, 1, 1)
        ctx.print(f"Variational EM: {estimator.n_iter_} passes in {time.perf_counter() - started:.3f} s on {jobs} "
                  f"process(es); bound {estimator.bound_:.4f}.")
        model = LDAModel(estimator, {"iterations": int(estimator.n_iter_), "alpha0": hp["alpha0"],
                                     "train_documents": int(documents)})
        if test is None:
            ctx.print("Test data is not provided.")
        elif test.sum() == 0:
            ctx.print("The test documents hold no words: no per-word log-likelihood to report.")
        else:
            onep.quality_metric(ctx, "test", "pwll", model.per_word_log_likelihood(test), tag="score")
        model.save(ctx.model_dir)

    def load(self, model_dir: Path) -> LDAPredictor:
        return LDAPredictor(LDAModel.load(Path(model_dir)))

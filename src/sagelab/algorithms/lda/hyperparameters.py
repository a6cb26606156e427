"""LDA's hyperparameter schema: the names, defaults and valid values SageMaker's `lda` accepts."""

from __future__ import annotations

from sagelab.algorithms.hyperparameters import Hyperparameter, HyperparameterSchema

SCHEMA = HyperparameterSchema((
    Hyperparameter("num_topics", "int", required=True, min=1, help="Number of topics to find."),
    Hyperparameter("feature_dim", "int", required=True, min=1, help="Vocabulary size: features per document."),
    Hyperparameter("mini_batch_size", "int", required=True, min=1,
                   help="Total number of documents in the training channel (set by the SageMaker SDK)."),
    Hyperparameter("alpha0", "float", 1.0, min=0, min_inclusive=False,
                   help="Concentration of the topic prior: the sum of the Dirichlet parameters."),
    Hyperparameter("max_restarts", "int", 10, min=1,
                   help="Restarts of AWS's spectral decomposition; variational inference needs none."),
    Hyperparameter("max_iterations", "int", 1000, min=1, help="Most passes of variational EM over the corpus."),
    Hyperparameter("tol", "float", 1e-8, min=0, min_inclusive=False,
                   help="Tolerance of AWS's alternating least squares; variational inference stops on its own test."),
))

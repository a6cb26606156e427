"""The `sagelab-evaluator` processing image: scores a model, or cross-validates an algorithm."""

"""The contract SageMaker's first-party (1P, "Amazon") algorithms share: data formats, training, serving."""

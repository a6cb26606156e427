"""SageMaker's PCA (`pca` images)."""

"""SageMaker's K-Means (`kmeans` images)."""

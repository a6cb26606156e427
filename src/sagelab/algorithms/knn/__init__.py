"""SageMaker's k-NN (`knn` images)."""

"""SageMaker's Object2Vec (`object2vec` images): pair encoders and a comparator, in PyTorch."""

"""SageMaker's DeepAR forecasting (`forecasting-deepar` images): an autoregressive LSTM in PyTorch."""

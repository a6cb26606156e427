"""SageMaker's NTM (`ntm` images): a neural topic model (a variational autoencoder) in PyTorch."""

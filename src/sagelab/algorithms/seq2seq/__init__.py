"""SageMaker's Sequence-to-Sequence (`seq2seq` images): an RNN encoder-decoder with attention, in PyTorch."""

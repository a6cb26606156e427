"""SageMaker's Image Classification (`image-classification` images): a ResNet trained from scratch, in PyTorch."""

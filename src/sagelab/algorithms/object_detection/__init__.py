"""SageMaker's Object Detection built-in algorithm (SSD), in PyTorch."""

"""What SageMaker's image algorithms share: their image inputs (`records`) and their ResNet backbone (`resnet`)."""

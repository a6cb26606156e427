"""SageMaker's Semantic Segmentation (`semantic-segmentation` images): FCN, PSP and DeepLab V3 heads on a ResNet, in PyTorch."""

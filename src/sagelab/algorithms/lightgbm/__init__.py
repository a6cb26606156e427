"""SageMaker's JumpStart LightGBM (`lightgbm-classification-model`, `lightgbm-regression-model`)."""

"""What SageMaker's JumpStart tabular algorithms (LightGBM, CatBoost) share."""

"""SageMaker's JumpStart CatBoost (`catboost-classification-model`, `catboost-regression-model`)."""

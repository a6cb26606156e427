"""SageMaker's built-in XGBoost (`sagemaker-xgboost` images)."""

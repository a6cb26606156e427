"""SageMaker's Random Cut Forest (`randomcutforest` images)."""

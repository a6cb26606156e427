"""SageMaker's Linear Learner (`linear-learner` images)."""

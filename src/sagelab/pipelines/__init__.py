"""SageMaker Pipelines: pipeline definitions validated once, and executions run as DAGs of SageMaker jobs."""

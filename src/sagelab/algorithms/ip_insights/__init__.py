"""SageMaker's IP Insights (`ipinsights` images)."""

"""SageMaker Model Monitor (data quality): job definitions, monitoring schedules, their executions, and the
analyzer that compares an endpoint's captured data with a baseline."""

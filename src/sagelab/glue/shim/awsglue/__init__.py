"""The part of AWS Glue's `awsglue` library that Python shell scripts use, for scripts run by sagelab."""

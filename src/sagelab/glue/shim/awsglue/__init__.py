"""The part of AWS Glue's `awsglue` library that job scripts use, for scripts run by sagelab.

`awsglue.utils.getResolvedOptions` serves every job; `awsglue.context`, `awsglue.dynamicframe`,
`awsglue.transforms` and `awsglue.job` serve glueetl (Spark) scripts and import PySpark when used.
"""

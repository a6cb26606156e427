"""Glue jobs of the `pythonshell` kind: a user's Python script run on the compute engine."""

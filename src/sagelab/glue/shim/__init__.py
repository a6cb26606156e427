"""Modules put on the import path of job scripts (not imported by sagelab itself)."""

"""Athena: SQL over the lake's catalog tables, run by DuckDB, answered through Athena's API."""

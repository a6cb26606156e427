"""SQL on streams: Kinesis Data Analytics (SQL) applications, continuous SQL run on DuckDB."""

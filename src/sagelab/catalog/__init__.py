"""The Glue Data Catalog: databases, tables and partitions over the lake, and the crawlers that fill it."""

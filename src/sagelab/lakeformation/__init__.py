"""Lake Formation: data lake permissions on the Glue Data Catalog, and the decisions Glue and Athena read."""

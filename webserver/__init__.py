"""The REST API: a Kestra-shaped /api/v1 over the DuckDB projection and the log."""

"""The analytics API: per-link stats and top links, read from ClickHouse rollups and the
PostgreSQL totals the aggregator writes. Run with `python -m analytics serve`."""

"""Adapters: postgres (link totals, known codes), clickhouse (rollups, via clickhouse-sqlalchemy)."""

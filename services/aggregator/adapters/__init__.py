"""Adapters named by what they talk to: postgres, clickhouse, kafka (+ faust tables, metrics)."""

"""The click aggregator: faust workers that consume `clicks`, deduplicate by event id and sink
exact counts to PostgreSQL (link totals) and ClickHouse (raw events + rollups).

Run with `python -m aggregator worker`; operations: `replay-clicks`, `retention`.
"""

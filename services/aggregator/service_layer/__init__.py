"""Use cases of the aggregator: the click pipeline (ledger -> ClickHouse exactly once) and batch accumulation."""

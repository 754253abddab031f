"""Compose-only stack control: `python -m composectl init|health-server`.

The native stack's `stackctl` addresses every component as 127.0.0.1:<port>; inside the compose
network each component is a host name. This package reuses stackctl's topic and migration code
and takes the addresses from the services' own variables (KAFKA_BOOTSTRAP_SERVERS, POSTGRES_DSN,
REDIS_URL, REDIS_REPLICA_URL, CLICKHOUSE_URL, ...).
"""

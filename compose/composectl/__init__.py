"""Compose-only stack control: `python -m composectl secrets|init|health-server`.

The native stack's `stackctl` addresses every component as 127.0.0.1:<port>; inside the compose
network each component is a host name. This package reuses stackctl's topic and migration code
and takes the addresses from the services' own settings (KAFKA_BOOTSTRAP_SERVERS, and the
POSTGRES_DSN, REDIS_URL, REDIS_REPLICA_URL and CLICKHOUSE_URL that carry credentials, read from
the files their <NAME>_FILE variables name). `secrets` generates those credentials first.
"""

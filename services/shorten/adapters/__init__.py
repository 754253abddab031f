"""Adapters of the shorten service: PostgreSQL (links + outbox), Kafka (relay), Redis (rate limit)."""

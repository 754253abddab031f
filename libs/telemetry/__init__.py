"""Telemetry shared by every service: OpenTelemetry tracing (context carried in Kafka headers)
and Prometheus metrics helpers."""

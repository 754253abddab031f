-- The W3C traceparent of the request that wrote the event, so the relay (another process,
-- maybe much later) continues the same trace into the Kafka message headers.
ALTER TABLE shorten.outbox ADD COLUMN IF NOT EXISTS traceparent text;

-- The outbox no longer NOTIFYs the relay on every insert: a transaction that NOTIFYs takes a
-- database-wide lock at commit and holds it through its WAL flush, so every create committed
-- one after the other (no group commit), and each NOTIFY woke the relay for a handful of rows.
-- Measured with `just bench writes`: PostgreSQL's CPU per create halved without it. The relay
-- polls instead (SHORTEN_RELAY_POLL_INTERVAL, 50 ms idle; SHORTEN_RELAY_BATCH_WAIT while busy).
DROP TRIGGER IF EXISTS outbox_notify ON shorten.outbox;
DROP FUNCTION IF EXISTS shorten.notify_outbox();

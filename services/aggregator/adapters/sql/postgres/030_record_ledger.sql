-- The dedup ledger, one row per Kafka *record* of `clicks` (a redirect's partition batch of
-- clicks, or one click of the previous format), not per click. The primary key is the dedup: a
-- re-sent or redelivered or replayed record conflicts and is not counted again. Rows are kept
-- while the record's newest click is inside the dedup horizon (AGGREGATOR_LEDGER_RETENTION_DAYS,
-- default 8 days >= the clicks topic's 7) and pruned by `python -m aggregator retention`.
CREATE TABLE IF NOT EXISTS clicks.record_ledger (
    record_id   uuid        PRIMARY KEY,
    newest_at   timestamptz NOT NULL,
    clicks      integer     NOT NULL CHECK (clicks > 0),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
-- Pruning walks newest_at; BRIN stays tiny for time-ordered inserts.
CREATE INDEX IF NOT EXISTS record_ledger_newest_brin ON clicks.record_ledger USING brin (newest_at);

-- The previous ledger kept one row per click (event id = the id of a single-click record):
-- carry its ids over once, so a replay of old single-click records still counts nothing twice.
DO $$
BEGIN
    IF to_regclass('clicks.event_ledger') IS NOT NULL THEN
        INSERT INTO clicks.record_ledger (record_id, newest_at, clicks, recorded_at)
        SELECT event_id, occurred_at, 1, recorded_at FROM clicks.event_ledger
        ON CONFLICT (record_id) DO NOTHING;
        DROP TABLE clicks.event_ledger;
    END IF;
END
$$;

-- Batches PostgreSQL counted whose clicks ClickHouse may not hold yet: written in the claim
-- transaction, removed (under the row's lock) in the transaction that wraps the ClickHouse
-- inserts. An entry left by a killed worker names its records (partition, offset) so any
-- worker can re-read them and finish the write (services/aggregator/recovery.py).
CREATE TABLE IF NOT EXISTS clicks.sink_journal (
    sink_id    uuid        PRIMARY KEY,
    topic      text        NOT NULL,
    partitions integer[]   NOT NULL,
    offsets    bigint[]    NOT NULL,
    codes      text[],     -- a rebuild's entry: only these codes' clicks (NULL: every click)
    created_at timestamptz NOT NULL DEFAULT now()
);

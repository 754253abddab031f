-- The dedup ledger, one row per Kafka *record* of `clicks` (a redirect's partition batch of
-- clicks, or one click of the previous format), not per click. The primary key is the dedup: a
-- re-sent or redelivered or replayed record conflicts and is not counted again. Rows are kept
-- while the record's newest click is inside the dedup horizon (AGGREGATOR_LEDGER_RETENTION_DAYS,
-- default 8 days >= the clicks topic's 7).
--
-- Partitioned by day on newest_at (RANGE), because the ledger grows with click traffic (one row
-- per record, every record for 8 days) and is only ever trimmed by age: `python -m aggregator
-- retention` drops whole days past the horizon (DROP TABLE: no dead rows, no vacuum, no index
-- bloat) instead of DELETEing millions of rows, and creates the days ahead (PostgreSQL 15 has no
-- automatic partition creation; see docs/scaling.md for why not pg_partman).
--
-- Why the key is (record_id, newest_at) and dedup stays exact: a unique constraint on a
-- partitioned table must contain the partition key. newest_at is not the insertion time but a
-- pure function of the record's content (its newest click, whole seconds: to_timestamp of
-- aggregator.domain.clicks.ClickRecord.newest), so every copy of a record (a producer re-send, a
-- redelivery, a replay days later) carries the same newest_at, is routed to the same day's
-- partition, and conflicts there: (record_id, newest_at) is unique exactly when record_id is.
-- A record whose newest click is older than the horizon is refused before the ledger (poison),
-- and a day is dropped only once its whole range is older than the horizon.
--
-- Rows whose day has no partition yet (the retention job down for longer than the days it
-- creates ahead) go to the DEFAULT partition, not lost; clicks.create_record_ledger_day moves
-- them out when their day is created.

-- An existing unpartitioned ledger (before this change) is converted in this same transaction
-- (`just migrate` sends the file as one implicit transaction): renamed, its rows copied into the
-- partitioned table below, dropped. The copy is at most 8 days of records.
DO $$
BEGIN
    IF (SELECT relkind FROM pg_class WHERE oid = to_regclass('clicks.record_ledger')) = 'r' THEN
        ALTER TABLE clicks.record_ledger RENAME TO record_ledger_unpartitioned;
        ALTER TABLE clicks.record_ledger_unpartitioned RENAME CONSTRAINT record_ledger_pkey
            TO record_ledger_unpartitioned_pkey;
        DROP INDEX IF EXISTS clicks.record_ledger_newest_brin;
    END IF;
END
$$;

CREATE TABLE IF NOT EXISTS clicks.record_ledger (
    record_id   uuid        NOT NULL,
    newest_at   timestamptz NOT NULL,
    clicks      integer     NOT NULL CHECK (clicks > 0),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (record_id, newest_at)
) PARTITION BY RANGE (newest_at);

CREATE TABLE IF NOT EXISTS clicks.record_ledger_default PARTITION OF clicks.record_ledger DEFAULT;

-- One day's partition, clicks.record_ledger_pYYYYMMDD, [day 00:00 UTC, next day 00:00 UTC).
-- Idempotent. Rows of that day already in the DEFAULT partition move into it first (ATTACH
-- refuses while the default holds rows of the range); the default is locked for the move, so a
-- concurrent insert of that day waits and then lands in the new partition, where the moved copy
-- of a duplicate is: dedup holds across the move.
CREATE OR REPLACE FUNCTION clicks.create_record_ledger_day(day date) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    part  text        := 'record_ledger_p' || to_char(day, 'YYYYMMDD');
    lower timestamptz := day::timestamp AT TIME ZONE 'UTC';
    upper timestamptz := (day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF to_regclass('clicks.' || part) IS NOT NULL THEN
        RETURN false;
    END IF;
    LOCK TABLE clicks.record_ledger_default IN ACCESS EXCLUSIVE MODE;
    EXECUTE format('CREATE TABLE clicks.%I (LIKE clicks.record_ledger INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    -- The range as a CHECK lets ATTACH skip scanning the new table; dropped after.
    EXECUTE format('ALTER TABLE clicks.%I ADD CONSTRAINT %I CHECK (newest_at >= %L AND newest_at < %L)',
                   part, part || '_range', lower, upper);
    EXECUTE format('WITH moved AS (DELETE FROM clicks.record_ledger_default WHERE newest_at >= %L AND newest_at < %L'
                   ' RETURNING record_id, newest_at, clicks, recorded_at) INSERT INTO clicks.%I SELECT * FROM moved',
                   lower, upper, part);
    EXECUTE format('ALTER TABLE clicks.record_ledger ATTACH PARTITION clicks.%I FOR VALUES FROM (%L) TO (%L)',
                   part, lower, upper);
    EXECUTE format('ALTER TABLE clicks.%I DROP CONSTRAINT %I', part, part || '_range');
    RETURN true;
END
$$;

-- The days a fresh or converted ledger needs now: the horizon's 8 days back, 7 ahead. From then
-- on the retention job keeps creating the days ahead (aggregator.domain.retention).
SELECT clicks.create_record_ledger_day(d::date)
FROM generate_series((now() AT TIME ZONE 'UTC')::date - 8, (now() AT TIME ZONE 'UTC')::date + 7, interval '1 day') AS d;

DO $$
BEGIN
    IF to_regclass('clicks.record_ledger_unpartitioned') IS NOT NULL THEN
        -- Whole seconds, as the aggregator writes them (an old carried-over row could have a
        -- fraction; a replay of it must hit the same key).
        INSERT INTO clicks.record_ledger (record_id, newest_at, clicks, recorded_at)
        SELECT record_id, date_trunc('second', newest_at), clicks, recorded_at
        FROM clicks.record_ledger_unpartitioned
        ON CONFLICT DO NOTHING;
        DROP TABLE clicks.record_ledger_unpartitioned;
    END IF;
END
$$;

-- The previous ledger kept one row per click (event id = the id of a single-click record):
-- carry its ids over once, so a replay of old single-click records still counts nothing twice.
DO $$
BEGIN
    IF to_regclass('clicks.event_ledger') IS NOT NULL THEN
        INSERT INTO clicks.record_ledger (record_id, newest_at, clicks, recorded_at)
        SELECT event_id, date_trunc('second', occurred_at), 1, recorded_at FROM clicks.event_ledger
        ON CONFLICT DO NOTHING;
        DROP TABLE clicks.event_ledger;
    END IF;
END
$$;

-- Batches PostgreSQL counted whose clicks ClickHouse may not hold yet: written in the claim
-- transaction, removed (under the row's lock) in the transaction that wraps the ClickHouse
-- inserts. An entry left by a killed worker names its records (partition, offset) so any
-- worker can re-read them and finish the write (services/aggregator/recovery.py).
-- Not partitioned: it does not grow with traffic. An entry lives for one batch's ClickHouse
-- write (seconds), so the table holds the batches in flight (a few per worker), whatever the
-- click rate.
CREATE TABLE IF NOT EXISTS clicks.sink_journal (
    sink_id    uuid        PRIMARY KEY,
    topic      text        NOT NULL,
    partitions integer[]   NOT NULL,
    offsets    bigint[]    NOT NULL,
    codes      text[],     -- a rebuild's entry: only these codes' clicks (NULL: every click)
    created_at timestamptz NOT NULL DEFAULT now()
);

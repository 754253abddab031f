-- Aggregator schema `clicks`: the event-id ledger (dedup) and the per-link totals the APIs read.
-- Idempotent: applied by `just migrate` on every `just up`.
CREATE SCHEMA IF NOT EXISTS clicks;

-- One row per counted click. The primary key is the dedup: a repeated event id (retry,
-- redelivery after a crash, replay) conflicts and is not counted again. Rows are kept for the
-- dedup horizon (AGGREGATOR_LEDGER_RETENTION_DAYS, default 8 days >= the clicks topic's 7) and
-- pruned by `python -m aggregator retention`.
CREATE TABLE IF NOT EXISTS clicks.event_ledger (
    event_id    uuid        PRIMARY KEY,
    code        text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    is_bot      boolean     NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
-- Pruning walks occurred_at; BRIN stays tiny for time-ordered inserts.
CREATE INDEX IF NOT EXISTS event_ledger_occurred_at_brin ON clicks.event_ledger USING brin (occurred_at);

-- Lifetime counters per link, updated in the same transaction as the ledger insert, only by
-- the rows that were new. `clicks` are human clicks; bots are counted apart.
CREATE TABLE IF NOT EXISTS clicks.link_totals (
    code           text        PRIMARY KEY,
    clicks         bigint      NOT NULL DEFAULT 0 CHECK (clicks >= 0),
    bot_clicks     bigint      NOT NULL DEFAULT 0 CHECK (bot_clicks >= 0),
    first_click_at timestamptz,
    last_click_at  timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Codes the aggregator has seen on the `links` topic: analytics answers 200 (zero clicks) for
-- a known link and 404 for a code that is neither here nor in link_totals.
CREATE TABLE IF NOT EXISTS clicks.links_known (
    code          text        PRIMARY KEY,
    created_at    timestamptz NOT NULL,
    deleted_at    timestamptz,
    last_event_at timestamptz NOT NULL
);

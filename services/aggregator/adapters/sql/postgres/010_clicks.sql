-- Aggregator schema `clicks`: the per-link totals the APIs read (the dedup ledger is in 030).
-- Idempotent: applied by `just migrate` on every `just up`.
CREATE SCHEMA IF NOT EXISTS clicks;

-- Lifetime counters per link, updated in the same transaction as the ledger insert, only by
-- the clicks of records that were new. `clicks` are human clicks; bots are counted apart.
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

-- shorten: links and their transactional outbox. Idempotent; applied by `just migrate`.
CREATE SCHEMA IF NOT EXISTS shorten;

-- One row per code or alias, forever: a deleted link keeps its row (deleted_at set), so its
-- code is never handed out again (a reused code would inherit the old link's click stats).
CREATE TABLE IF NOT EXISTS shorten.links (
    code          text        PRIMARY KEY CHECK (char_length(code) BETWEEN 3 AND 64),
    url           text        NOT NULL CHECK (char_length(url) <= 2048),
    redirect_type smallint    NOT NULL DEFAULT 302 CHECK (redirect_type IN (301, 302)),
    expires_at    timestamptz,
    max_clicks    bigint      CHECK (max_clicks > 0),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    deleted_at    timestamptz
);

-- Transactional outbox: each link write inserts its event here in the same transaction.
-- The relay (`python -m shorten relay`) polls it and publishes rows in id order to the `links` topic and
-- sets published_at after the broker acked; rows are deleted after a retention
-- (SHORTEN_RELAY_RETENTION_SECONDS, default 1 day).
CREATE TABLE IF NOT EXISTS shorten.outbox (
    id           bigserial   PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    event_type   text        NOT NULL,
    code         text        NOT NULL,
    payload      bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);

CREATE INDEX IF NOT EXISTS outbox_unpublished_idx ON shorten.outbox (id) WHERE published_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_published_at_idx ON shorten.outbox (published_at)
    WHERE published_at IS NOT NULL;

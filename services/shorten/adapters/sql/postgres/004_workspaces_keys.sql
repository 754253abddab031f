-- Workspaces, their API keys, and links that belong to a workspace. Idempotent.

-- A workspace is a slug (contracts.links.Workspace); created by the first key issued for it.
CREATE TABLE IF NOT EXISTS shorten.workspaces (
    slug       text        PRIMARY KEY CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Links from before workspaces, and the stack's local admin key, belong to `default`.
INSERT INTO shorten.workspaces (slug) VALUES ('default') ON CONFLICT (slug) DO NOTHING;

-- API keys, by their SHA-256 digest only: the secret is shown once, at creation, and stored
-- nowhere. Every change is published to the `keys` topic through the outbox (topic 'keys'),
-- which is what the services authenticate against (platformkit.keys_log), never this table.
CREATE TABLE IF NOT EXISTS shorten.api_keys (
    key_id      text        PRIMARY KEY CHECK (key_id ~ '^[A-Za-z0-9_-]{4,40}$'),
    workspace   text        NOT NULL REFERENCES shorten.workspaces (slug),
    scopes      text[]      NOT NULL CHECK (cardinality(scopes) >= 1),
    digest      text        NOT NULL UNIQUE CHECK (digest ~ '^[0-9a-f]{64}$'),
    name        text        NOT NULL DEFAULT '' CHECK (char_length(name) <= 100),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz,
    revoked_at  timestamptz,
    replaced_by text        -- the key a rotation issued in its place
);
CREATE INDEX IF NOT EXISTS api_keys_workspace_idx ON shorten.api_keys (workspace, created_at);

-- Adding columns with constant defaults rewrites nothing (PostgreSQL >= 11): instant on a big table.
ALTER TABLE shorten.links ADD COLUMN IF NOT EXISTS workspace text NOT NULL DEFAULT 'default';
ALTER TABLE shorten.links ADD COLUMN IF NOT EXISTS public_stats boolean NOT NULL DEFAULT false;
ALTER TABLE shorten.links ADD COLUMN IF NOT EXISTS tags text[] NOT NULL DEFAULT '{}';

-- The list (GET /api/v1/links): a workspace's live links, newest first, keyset-paginated on
-- (created_at, code): an index range scan from the cursor, whatever the page number. `tags` is
-- INCLUDEd (in the leaf, not the key) so a `tag=` page walks the index alone (Index Only Scan),
-- skipping the rows without the tag without reading them, and then reads only the page's rows
-- (asyncpg_store.list_statement; EXPLAIN in tests/integration/shorten/test_access_paths.py).
-- Write cost: wider entries (a few short tags); a change of tags is no longer a HOT update.
-- It replaces links_workspace_newest_idx (same key, no INCLUDE): built once on an existing
-- table (a plain CREATE INDEX blocks link writes while it builds), then the old one is dropped.
CREATE INDEX IF NOT EXISTS links_workspace_newest_tags_idx
    ON shorten.links (workspace, created_at DESC, code DESC) INCLUDE (tags) WHERE deleted_at IS NULL;
DROP INDEX IF EXISTS shorten.links_workspace_newest_idx;
-- `tag=` (tags @> ARRAY[tag]).
CREATE INDEX IF NOT EXISTS links_tags_idx ON shorten.links USING gin (tags) WHERE deleted_at IS NULL;
-- `q=` (case-insensitive substring of code or URL: ILIKE '%q%'): trigram indexes, which a
-- leading-wildcard pattern can use (a btree cannot). pg_trgm is a trusted extension: the
-- database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS links_url_trgm_idx ON shorten.links USING gin (url gin_trgm_ops) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS links_code_trgm_idx ON shorten.links USING gin (code gin_trgm_ops) WHERE deleted_at IS NULL;

-- One outbox for every topic shorten publishes: `links` (key = code) and `keys` (key = key id,
-- in the `code` column). One relay publishes both, in outbox id order.
ALTER TABLE shorten.outbox ADD COLUMN IF NOT EXISTS topic text NOT NULL DEFAULT 'links';

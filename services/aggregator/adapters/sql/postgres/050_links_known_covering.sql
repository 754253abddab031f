-- analytics answers every stats request with the link's owner and visibility (services/analytics/
-- adapters/postgres.py, LIFETIME: code, workspace, public_stats by code). With those two columns
-- in the primary key's index (INCLUDE: stored in the leaf, not part of the key) the lookup is an
-- Index Only Scan: no heap page, as long as the row's page is all-visible, which it mostly is,
-- because a links_known row changes only on a link event (create, update, delete), not on clicks.
-- Write cost: the key's index entries are wider (two small columns); no second index, and an
-- update that keeps workspace and public_stats stays HOT. ON CONFLICT (code) still uses this key.
-- Tested: tests/integration/shorten/test_access_paths.py.
-- Idempotent: done once, when the key has no INCLUDE columns yet. The swap rebuilds the index in
-- the migration's transaction, blocking the aggregator's link writes meanwhile (seconds per
-- million links; links_known holds one row per link).
DO $$
BEGIN
    IF (SELECT indnatts = indnkeyatts FROM pg_index WHERE indexrelid = 'clicks.links_known_pkey'::regclass) THEN
        ALTER TABLE clicks.links_known
            DROP CONSTRAINT links_known_pkey,
            ADD CONSTRAINT links_known_pkey PRIMARY KEY (code) INCLUDE (workspace, public_stats);
    END IF;
END
$$;

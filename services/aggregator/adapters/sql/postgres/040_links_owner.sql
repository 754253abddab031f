-- Who owns each link and whether its stats are public (from the `links` topic, issue 10):
-- analytics answers a link's stats only to a key of its workspace, or to anyone when
-- public_stats. Links from before workspaces belong to `default`. Idempotent.
ALTER TABLE clicks.links_known ADD COLUMN IF NOT EXISTS workspace    text    NOT NULL DEFAULT 'default';
ALTER TABLE clicks.links_known ADD COLUMN IF NOT EXISTS public_stats boolean NOT NULL DEFAULT false;
ALTER TABLE clicks.links_known ADD COLUMN IF NOT EXISTS tags         text[]  NOT NULL DEFAULT '{}';

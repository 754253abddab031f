-- Aggregator tables in database `shortlink`. Valid on ClickHouse 18.16 and current releases
-- (no TTL, no LowCardinality, no DateTime64, no SimpleAggregateFunction). Applied on every
-- `just up` (idempotent). Retention: `python -m aggregator retention` drops monthly partitions
-- (ALTER TABLE ... DROP PARTITION) of the MergeTree tables: click_events, clicks_totals,
-- clicks_breakdown, clicks_top.
--
-- Exactness lives in the writer: the aggregator deduplicates clicks in PostgreSQL and sends each
-- batch of NEW clicks here once, into click_events (JSONEachRow) and into the three rollup feeds
-- (clicks_totals_in, clicks_breakdown_in, clicks_top_in; TabSeparated), plus one marker row per insert
-- (below). So the rollups hold plain counts (sum(clicks)), not event-id sets.

-- Raw click events. ReplacingMergeTree on (code, event_id): a repeated event collapses on merge.
CREATE TABLE IF NOT EXISTS click_events (
    event_id      UUID,
    code          String,
    occurred_at   DateTime('UTC'),
    visitor_key   String,
    referrer      String,
    referrer_host String,
    country       FixedString(2),
    device        String,
    is_bot        UInt8,
    ingested_at   DateTime('UTC') DEFAULT now()
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (code, event_id);

-- The rollups of the previous design (uniqExact states of every event id, fed from
-- click_events) are no longer fed: their views go first, then their tables.
DROP TABLE IF EXISTS clicks_minute_mv;
DROP TABLE IF EXISTS clicks_hour_mv;
DROP TABLE IF EXISTS clicks_day_mv;
DROP TABLE IF EXISTS clicks_dims_minute_mv;
DROP TABLE IF EXISTS clicks_minute;
DROP TABLE IF EXISTS clicks_hour;
DROP TABLE IF EXISTS clicks_day;
DROP TABLE IF EXISTS clicks_dims_minute;
-- So are clicks_rollup (totals and breakdowns in one table, a visitor state on every row: 12 rows
-- and 12 states per click) and the feeds of the first counts-based design; their
-- clicks are refilled by a replay into emptied sinks (services/aggregator/README.md).
DROP TABLE IF EXISTS clicks_rollup_mv;
DROP TABLE IF EXISTS clicks_top_mv;
DROP TABLE IF EXISTS clicks_rollup_feed;
DROP TABLE IF EXISTS clicks_top_feed;
DROP TABLE IF EXISTS clicks_rollup;

-- Marker rows. A feed row with is_bot = 2 is a marker: its code is '~' + an id ('~' is never
-- in a real code). The aggregator sends one per insert and checks afterwards whether that insert
-- landed (count() of the marker's code in click_events, clicks_totals, clicks_breakdown and
-- clicks_top). Each view below turns a marker into EXACTLY ONE row (grain 0 = minute, clicks 1).
-- Every analytics query filters is_bot IN (0) or IN (0, 1), so markers never show in an answer.
--
-- Write cost, per click: 3 totals rows (one visitor state each), 3 breakdown rows and 3 /top
-- rows (plain counts), where the previous clicks_rollup made 12 rows with a state each. A uniq
-- state is the dearest thing a row holds (built, written, and read and rewritten by every merge),
-- so only the rows that answer "unique visitors" carry one.

-- The rollups' inputs: the columns the views read, the same rows for each (one insert per feed,
-- so each target's part is all or nothing and holds its own marker). Null engine: nothing is
-- stored, the materialized view sees every inserted block.
CREATE TABLE IF NOT EXISTS clicks_totals_in (
    code          String,
    occurred_at   DateTime('UTC'),
    visitor_key   String,
    referrer_host String,
    country       FixedString(2),
    device        String,
    is_bot        UInt8
) ENGINE = Null;

CREATE TABLE IF NOT EXISTS clicks_breakdown_in AS clicks_totals_in;
CREATE TABLE IF NOT EXISTS clicks_top_in AS clicks_totals_in;

-- Per-link totals in three grains (0 = minute, 1 = hour, 2 = day; bucket = the start of the
-- minute / hour / UTC day): clicks and unique visitors (uniq of the anonymised visitor key;
-- query with uniqMerge). SummingMergeTree sums `clicks` and merges the AggregateFunction column
-- as AggregatingMergeTree would (on 18.16 and current releases alike). index_granularity 256: a
-- per-link query reads only the granules of that link.
CREATE TABLE IF NOT EXISTS clicks_totals (
    code     String,
    grain    UInt8,
    is_bot   UInt8,
    bucket   DateTime('UTC'),
    clicks   UInt64,
    visitors AggregateFunction(uniq, String)
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (code, grain, is_bot, bucket)
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS clicks_totals_mv TO clicks_totals AS
SELECT code, grain, is_bot, bucket, count() AS clicks, uniqState(visitor_key) AS visitors
FROM clicks_totals_in
ARRAY JOIN if(is_bot = 2, [toUInt8(0)], [toUInt8(0), toUInt8(1), toUInt8(2)]) AS grain,
           if(is_bot = 2, [toStartOfMinute(occurred_at)],
              [toStartOfMinute(occurred_at), toStartOfHour(occurred_at), toStartOfDay(occurred_at)]) AS bucket
GROUP BY code, grain, is_bot, bucket;

-- Per-link breakdowns, same grains: clicks per (referrer host ('' = direct), country, device)
-- combination. One row per click and grain, not one per click, grain and dim: a query splits the
-- combinations by dim (ARRAY JOIN) over the few buckets it reads, where a per-dim table would make
-- every click written cost three times the rows.
CREATE TABLE IF NOT EXISTS clicks_breakdown (
    code          String,
    grain         UInt8,
    is_bot        UInt8,
    bucket        DateTime('UTC'),
    referrer_host String,
    country       FixedString(2),
    device        String,
    clicks        UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (code, grain, is_bot, bucket, referrer_host, country, device)
SETTINGS index_granularity = 256;

-- Every click becomes 3 rows (grains), grouped per inserted block; a marker becomes one (grain 0)
-- row.
CREATE MATERIALIZED VIEW IF NOT EXISTS clicks_breakdown_mv TO clicks_breakdown AS
SELECT code, grain, is_bot, bucket, referrer_host, country, device, count() AS clicks
FROM clicks_breakdown_in
ARRAY JOIN if(is_bot = 2, [toUInt8(0)], [toUInt8(0), toUInt8(1), toUInt8(2)]) AS grain,
           if(is_bot = 2, [toStartOfMinute(occurred_at)],
              [toStartOfMinute(occurred_at), toStartOfHour(occurred_at), toStartOfDay(occurred_at)]) AS bucket
GROUP BY code, grain, is_bot, bucket, referrer_host, country, device;

-- Clicks per bucket per link, ordered by time first: /top reads a time range across all links
-- and ranks them by sum(clicks); unique visitors of the top N then come from clicks_totals.
CREATE TABLE IF NOT EXISTS clicks_top (
    grain  UInt8,
    bucket DateTime('UTC'),
    is_bot UInt8,
    code   String,
    clicks UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (grain, bucket, is_bot, code);

CREATE MATERIALIZED VIEW IF NOT EXISTS clicks_top_in_mv TO clicks_top AS
SELECT grain, bucket, is_bot, code, count() AS clicks
FROM clicks_top_in
ARRAY JOIN if(is_bot = 2, [toUInt8(0)], [toUInt8(0), toUInt8(1), toUInt8(2)]) AS grain,
           if(is_bot = 2, [toStartOfMinute(occurred_at)],
              [toStartOfMinute(occurred_at), toStartOfHour(occurred_at), toStartOfDay(occurred_at)]) AS bucket
GROUP BY grain, bucket, is_bot, code;

-- The links of each workspace (from the `links` topic, issue 10): /top ranks one workspace's
-- links, optionally of one tag, inside ClickHouse (`code IN (SELECT ... WHERE workspace = ..)`).
-- One row per link event; ReplacingMergeTree keeps the newest `version` (the event's time in
-- microseconds) per (workspace, code), and queries take argMax(.., version) so rows not yet
-- merged answer the same: a replay of `links` inserts rows with the same versions, which
-- changes nothing. A link never changes workspace (its owner is the workspace that created
-- it), so ordering by workspace first makes a workspace's query read only its own granules.
CREATE TABLE IF NOT EXISTS link_workspaces (
    workspace String,
    code      String,
    tags      Array(String),
    deleted   UInt8,
    version   UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (workspace, code)
SETTINGS index_granularity = 256;

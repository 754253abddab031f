-- Aggregator tables in database `shortlink`. Valid on ClickHouse 18.16 and current releases
-- (no TTL, no LowCardinality, no DateTime64, no SimpleAggregateFunction). Applied on every
-- `just up` (idempotent). Retention: `python -m aggregator retention` drops monthly partitions
-- (ALTER TABLE ... DROP PARTITION) of the MergeTree tables: click_events, clicks_rollup,
-- clicks_top.
--
-- Exactness lives in the writer: the aggregator deduplicates clicks in PostgreSQL and sends each
-- batch of NEW clicks here once, as the same JSONEachRow rows into click_events,
-- clicks_rollup_feed and clicks_top_feed, plus one marker row per insert (below). So the rollups
-- hold plain counts (sum(clicks)), not event-id sets.

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

-- Marker rows. A feed row with is_bot = 2 is a marker: its code is '~' + an id ('~' is never
-- in a real code). The aggregator sends one per insert and checks afterwards whether that insert
-- landed (count() of the marker's code in click_events, clicks_rollup and clicks_top). Each view
-- below turns a marker into EXACTLY ONE row (grain 0 = minute, dim '', clicks 1). Every analytics
-- query filters is_bot IN (0) or IN (0, 1), so markers never show in an answer.

-- The rollups' input: the aggregator inserts the rows it inserts into click_events here too.
-- Null engine: nothing is stored, the materialized views see every inserted block.
CREATE TABLE IF NOT EXISTS clicks_rollup_feed (
    event_id      UUID,
    code          String,
    occurred_at   DateTime('UTC'),
    visitor_key   String,
    referrer      String,
    referrer_host String,
    country       FixedString(2),
    device        String,
    is_bot        UInt8
) ENGINE = Null;

-- Per-link rollup in three grains (0 = minute, 1 = hour, 2 = day; bucket = the start of the
-- minute / hour / UTC day). dim '' rows are the link's totals: clicks and unique visitors
-- (uniq of the anonymised visitor key; query with uniqMerge). dim 'referrer' (value = host, ''
-- = direct), 'country', 'device' rows are breakdowns: clicks per value (their visitors column
-- holds a one-value state and is never read).
-- SummingMergeTree sums `clicks` and merges the AggregateFunction column as
-- AggregatingMergeTree would (on 18.16 and current releases alike). index_granularity 256: a
-- per-link query reads only the granules of that link.
CREATE TABLE IF NOT EXISTS clicks_rollup (
    code     String,
    grain    UInt8,
    dim      String,
    is_bot   UInt8,
    bucket   DateTime('UTC'),
    value    String,
    clicks   UInt64,
    visitors AggregateFunction(uniq, String)
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (code, grain, dim, is_bot, bucket, value)
SETTINGS index_granularity = 256;

-- Every click becomes 12 rows (3 grains x totals + 3 breakdowns), grouped per inserted block;
-- a marker becomes the one (grain 0, dim '') row.
CREATE MATERIALIZED VIEW IF NOT EXISTS clicks_rollup_mv TO clicks_rollup AS
SELECT code, r.1 AS grain, r.2 AS dim, is_bot,
       multiIf(r.1 = 0, toStartOfMinute(occurred_at), r.1 = 1, toStartOfHour(occurred_at),
               toStartOfDay(occurred_at)) AS bucket,
       r.3 AS value, count() AS clicks, uniqState(if(r.2 = '', visitor_key, '')) AS visitors
FROM clicks_rollup_feed
ARRAY JOIN if(is_bot = 2, [(toUInt8(0), '', '')],
              [(toUInt8(0), '', ''), (toUInt8(1), '', ''), (toUInt8(2), '', ''),
               (toUInt8(0), 'referrer', referrer_host), (toUInt8(1), 'referrer', referrer_host),
               (toUInt8(2), 'referrer', referrer_host),
               (toUInt8(0), 'country', toString(country)), (toUInt8(1), 'country', toString(country)),
               (toUInt8(2), 'country', toString(country)),
               (toUInt8(0), 'device', device), (toUInt8(1), 'device', device),
               (toUInt8(2), 'device', device)]) AS r
GROUP BY code, grain, dim, is_bot, bucket, value;

-- /top's input (same rows as clicks_rollup_feed).
CREATE TABLE IF NOT EXISTS clicks_top_feed (
    event_id      UUID,
    code          String,
    occurred_at   DateTime('UTC'),
    visitor_key   String,
    referrer      String,
    referrer_host String,
    country       FixedString(2),
    device        String,
    is_bot        UInt8
) ENGINE = Null;

-- Clicks per bucket per link, ordered by time first: /top reads a time range across all links
-- and ranks them by sum(clicks); unique visitors of the top N then come from clicks_rollup.
CREATE TABLE IF NOT EXISTS clicks_top (
    grain  UInt8,
    bucket DateTime('UTC'),
    is_bot UInt8,
    code   String,
    clicks UInt64
) ENGINE = SummingMergeTree
PARTITION BY toYYYYMM(bucket)
ORDER BY (grain, bucket, is_bot, code);

CREATE MATERIALIZED VIEW IF NOT EXISTS clicks_top_mv TO clicks_top AS
SELECT grain,
       multiIf(grain = 0, toStartOfMinute(occurred_at), grain = 1, toStartOfHour(occurred_at),
               toStartOfDay(occurred_at)) AS bucket,
       is_bot, code, count() AS clicks
FROM clicks_top_feed
ARRAY JOIN if(is_bot = 2, [toUInt8(0)], [toUInt8(0), toUInt8(1), toUInt8(2)]) AS grain
GROUP BY grain, bucket, is_bot, code;

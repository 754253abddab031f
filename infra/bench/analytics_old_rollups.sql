-- The rollups before issue 8 (services/aggregator/adapters/sql/clickhouse/010_clicks.sql up to
-- then), kept for `just bench analytics` to measure the old queries in the same run: exact clicks
-- as uniqExact states of every event id. The bench creates them in its scratch database and fills
-- them through the same materialized views, fed from a Null table instead of click_events.
CREATE TABLE IF NOT EXISTS old_rollup_feed (
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

CREATE TABLE IF NOT EXISTS clicks_minute (
    code     String,
    minute   DateTime('UTC'),
    is_bot   UInt8,
    events   AggregateFunction(uniqExact, UUID),
    visitors AggregateFunction(uniq, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (code, is_bot, minute)
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS clicks_minute_mv TO clicks_minute AS
SELECT code, toStartOfMinute(occurred_at) AS minute, is_bot,
       uniqExactState(event_id) AS events, uniqState(visitor_key) AS visitors
FROM old_rollup_feed
GROUP BY code, minute, is_bot;

CREATE TABLE IF NOT EXISTS clicks_hour (
    code     String,
    hour     DateTime('UTC'),
    is_bot   UInt8,
    events   AggregateFunction(uniqExact, UUID),
    visitors AggregateFunction(uniq, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (code, is_bot, hour)
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS clicks_hour_mv TO clicks_hour AS
SELECT code, toStartOfHour(occurred_at) AS hour, is_bot,
       uniqExactState(event_id) AS events, uniqState(visitor_key) AS visitors
FROM old_rollup_feed
GROUP BY code, hour, is_bot;

CREATE TABLE IF NOT EXISTS clicks_day (
    code     String,
    day      DateTime('UTC'),
    is_bot   UInt8,
    events   AggregateFunction(uniqExact, UUID),
    visitors AggregateFunction(uniq, String)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (code, is_bot, day)
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS clicks_day_mv TO clicks_day AS
SELECT code, toStartOfDay(occurred_at) AS day, is_bot,
       uniqExactState(event_id) AS events, uniqState(visitor_key) AS visitors
FROM old_rollup_feed
GROUP BY code, day, is_bot;

CREATE TABLE IF NOT EXISTS clicks_dims_minute (
    code   String,
    minute DateTime('UTC'),
    is_bot UInt8,
    dim    String,
    value  String,
    events AggregateFunction(uniqExact, UUID)
) ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (code, is_bot, dim, minute, value)
SETTINGS index_granularity = 256;

CREATE MATERIALIZED VIEW IF NOT EXISTS clicks_dims_minute_mv TO clicks_dims_minute AS
SELECT code, toStartOfMinute(occurred_at) AS minute, is_bot, dv.1 AS dim, dv.2 AS value,
       uniqExactState(event_id) AS events
FROM old_rollup_feed
ARRAY JOIN [('referrer', referrer_host), ('country', toString(country)), ('device', device)] AS dv
GROUP BY code, minute, is_bot, dim, value;

-- The aggregator's own progress per topic partition: the lowest offset not yet durably counted.
-- Written after each batch's data, loaded when a worker takes a partition; it, not faust's
-- committed offset, decides where re-reading must start (see services/aggregator/domain/gaps.py).
CREATE TABLE IF NOT EXISTS clicks.consumer_frontier (
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    next_offset bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

-- Retention (`qtrader prune`): old journal rows, runs, equity snapshots and finished signals
-- move to zstd Parquet files under an archive folder. The database keeps which files are
-- valid (a file not listed here was left by a prune that did not commit, and is removed),
-- and the identity of every pruned signal, so a source that sends it again is still deduped.

CREATE TABLE archive_files (
    path        VARCHAR NOT NULL,         -- relative to the archive folder: TABLE/pruned-….parquet
    table_name  VARCHAR NOT NULL,
    rows        BIGINT NOT NULL,
    older_than  TIMESTAMP NOT NULL,       -- every row in it is older than this
    run_id      BIGINT NOT NULL,
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE signal_keys (
    signal_id     VARCHAR NOT NULL,
    content_hash  VARCHAR NOT NULL,
    status        VARCHAR NOT NULL,       -- its status when it was pruned
    pruned_at     TIMESTAMP NOT NULL
);

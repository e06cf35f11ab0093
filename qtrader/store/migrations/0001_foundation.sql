-- Foundation: signals, runs, events, state. All timestamps are UTC (naive TIMESTAMP).

CREATE SEQUENCE IF NOT EXISTS runs_seq START 1;
CREATE TABLE runs (
    run_id      BIGINT PRIMARY KEY DEFAULT nextval('runs_seq'),
    command     VARCHAR NOT NULL,
    args        VARCHAR NOT NULL,          -- JSON object of the options, secrets masked
    mode        VARCHAR,
    pid         INTEGER NOT NULL,
    version     VARCHAR NOT NULL,
    started_at  TIMESTAMP NOT NULL,
    ended_at    TIMESTAMP,                 -- NULL: still running, or the process died
    outcome     VARCHAR,                   -- ok | failed | usage | halted | interrupted
    exit_code   INTEGER,
    error       VARCHAR,
    summary     VARCHAR                    -- JSON
);

CREATE SEQUENCE IF NOT EXISTS signals_seq START 1;
CREATE TABLE signals (
    seq                BIGINT PRIMARY KEY DEFAULT nextval('signals_seq'),
    signal_id          VARCHAR NOT NULL,
    content_hash       VARCHAR NOT NULL,
    source             VARCHAR NOT NULL,   -- the --from value, secrets masked
    location           VARCHAR NOT NULL,   -- file:line, stream entry id, url[index]
    raw                VARCHAR NOT NULL,   -- the record as received
    shape              VARCHAR,            -- trade_intent | auto_executor
    symbol             VARCHAR,
    action             VARCHAR,            -- BUY | SELL | CLOSE | HOLD
    confidence         DECIMAL(38, 18),
    position_size_usd  DECIMAL(38, 18),
    leverage           DECIMAL(38, 18),
    entry_price        DECIMAL(38, 18),
    stop_loss          DECIMAL(38, 18),
    take_profit        DECIMAL(38, 18),
    signal_ts          TIMESTAMP,          -- the signal's own timestamp
    received_at        TIMESTAMP NOT NULL,
    status             VARCHAR NOT NULL,   -- pending | invalid | conflict | expired | rejected | executed | skipped
    reason             VARCHAR,
    run_id             BIGINT NOT NULL,
    updated_at         TIMESTAMP NOT NULL,
    UNIQUE (signal_id, content_hash)
);
CREATE INDEX signals_status_idx ON signals (status);

CREATE SEQUENCE IF NOT EXISTS events_seq START 1;
CREATE TABLE events (
    event_id   BIGINT PRIMARY KEY DEFAULT nextval('events_seq'),
    ts         TIMESTAMP NOT NULL,
    run_id     BIGINT,
    kind       VARCHAR NOT NULL,           -- halt, breaker, repair, alert, ...
    severity   VARCHAR NOT NULL,           -- info | warning | critical
    symbol     VARCHAR,
    message    VARCHAR NOT NULL,
    data       VARCHAR                     -- JSON
);

CREATE TABLE state (
    key         VARCHAR PRIMARY KEY,       -- e.g. halt, cursor:redis://host:6379/0?stream=x
    value       VARCHAR NOT NULL,          -- JSON
    updated_at  TIMESTAMP NOT NULL
);

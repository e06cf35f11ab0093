-- Execution: orders, the decision behind each, every request sent, exchange caches.

CREATE TABLE orders (
    client_order_id    VARCHAR PRIMARY KEY,    -- deterministic: qt-<hash of signal id>-<role>
    signal_seq         BIGINT,                 -- signals.seq of the signal it serves
    signal_id          VARCHAR,
    role               VARCHAR NOT NULL,       -- entry | stop_loss | take_profit | exit
    mode               VARCHAR NOT NULL,       -- testnet | live (paper later)
    symbol             VARCHAR NOT NULL,
    side               VARCHAR NOT NULL,       -- BUY | SELL
    kind               VARCHAR NOT NULL,       -- market | stop_loss | take_profit
    position_side      VARCHAR,                -- hedge mode: LONG | SHORT
    reduce_only        BOOLEAN NOT NULL,
    requested_qty      DECIMAL(38, 18),
    trigger_price      DECIMAL(38, 18),
    exchange_order_id  VARCHAR,                -- orderId, or algoId for conditional orders
    status             VARCHAR NOT NULL,       -- submitting | unknown | open | filled | partially_filled | canceled | expired | rejected | not_found
    filled_qty         DECIMAL(38, 18) NOT NULL DEFAULT 0,
    avg_price          DECIMAL(38, 18),
    error_code         INTEGER,
    error              VARCHAR,
    raw_response       VARCHAR,                -- JSON as the exchange sent it
    run_id             BIGINT NOT NULL,
    created_at         TIMESTAMP NOT NULL,
    updated_at         TIMESTAMP NOT NULL
);
CREATE INDEX orders_signal_idx ON orders (signal_seq);

CREATE SEQUENCE IF NOT EXISTS decisions_seq START 1;
CREATE TABLE decisions (
    decision_id  BIGINT PRIMARY KEY DEFAULT nextval('decisions_seq'),
    signal_seq   BIGINT NOT NULL,
    run_id       BIGINT NOT NULL,
    ts           TIMESTAMP NOT NULL,
    outcome      VARCHAR NOT NULL,             -- accept | reject | skip | expire
    reason       VARCHAR,
    detail       VARCHAR NOT NULL              -- JSON: prices, sizing, rounding, leverage clamp
);
CREATE INDEX decisions_signal_idx ON decisions (signal_seq);

CREATE SEQUENCE IF NOT EXISTS exchange_calls_seq START 1;
CREATE TABLE exchange_calls (
    call_id          BIGINT PRIMARY KEY DEFAULT nextval('exchange_calls_seq'),
    run_id           BIGINT NOT NULL,
    mode             VARCHAR NOT NULL,
    ts               TIMESTAMP NOT NULL,
    method           VARCHAR NOT NULL,
    path             VARCHAR NOT NULL,
    params           VARCHAR NOT NULL,         -- JSON, signature removed; keys never included
    client_order_id  VARCHAR,
    response         VARCHAR,                  -- JSON (truncated at 4000 characters)
    error            VARCHAR,
    ms               DOUBLE
);

CREATE TABLE market_cache (
    mode        VARCHAR PRIMARY KEY,
    fetched_at  TIMESTAMP NOT NULL,
    markets     VARCHAR NOT NULL               -- JSON list of ccxt market structures
);

CREATE TABLE symbol_setup (
    mode         VARCHAR NOT NULL,
    symbol       VARCHAR NOT NULL,
    leverage     INTEGER NOT NULL,
    margin_mode  VARCHAR NOT NULL,
    updated_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (mode, symbol)
);

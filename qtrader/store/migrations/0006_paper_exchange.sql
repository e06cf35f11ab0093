-- The paper exchange's own books. Paper mode is a simulator behind the Exchange port: these
-- tables are its "exchange side" (what Binance would hold), kept apart from qtrader's own
-- records (orders, fills, income, positions with mode = 'paper'), which reconcile fills in
-- from them exactly as it does from Binance. Every id here starts with PAPER-.

CREATE SEQUENCE IF NOT EXISTS paper_ids START 1;

CREATE TABLE paper_orders (
    order_id        VARCHAR NOT NULL,         -- PAPER-<n> (no index: see 0003)
    client_id       VARCHAR NOT NULL,
    symbol          VARCHAR NOT NULL,
    side            VARCHAR NOT NULL,         -- BUY | SELL
    position_side   VARCHAR NOT NULL,         -- BOTH (paper is one-way)
    kind            VARCHAR NOT NULL,         -- market | stop_loss | take_profit
    conditional     BOOLEAN NOT NULL,         -- an algo (trigger) order
    qty             DECIMAL(38, 18) NOT NULL,
    trigger_price   DECIMAL(38, 18),
    reduce_only     BOOLEAN NOT NULL,
    status          VARCHAR NOT NULL,         -- NEW | FILLED | CANCELED | EXPIRED
    filled_qty      DECIMAL(38, 18) NOT NULL,
    avg_price       DECIMAL(38, 18),
    created_at      TIMESTAMP NOT NULL,       -- market time
    updated_at      TIMESTAMP NOT NULL,
    note            VARCHAR                   -- why it expired, how it filled
);

CREATE TABLE paper_fills (
    trade_id        VARCHAR NOT NULL,         -- PAPER-T<n>
    order_id        VARCHAR NOT NULL,
    symbol          VARCHAR NOT NULL,
    side            VARCHAR NOT NULL,
    qty             DECIMAL(38, 18) NOT NULL,
    price           DECIMAL(38, 18) NOT NULL,
    fee             DECIMAL(38, 18) NOT NULL, -- USDT, paid
    realized_pnl    DECIMAL(38, 18) NOT NULL,
    maker           BOOLEAN NOT NULL,
    ts_ms           BIGINT NOT NULL           -- strictly increasing
);

CREATE TABLE paper_income (
    tran_id         VARCHAR NOT NULL,         -- PAPER-I<n>
    symbol          VARCHAR,
    income_type     VARCHAR NOT NULL,         -- TRANSFER | REALIZED_PNL | COMMISSION | FUNDING_FEE
    amount          DECIMAL(38, 18) NOT NULL, -- signed USDT: the wallet is the sum of these
    trade_id        VARCHAR,
    ts_ms           BIGINT NOT NULL,
    info            VARCHAR
);

CREATE TABLE paper_positions (
    symbol          VARCHAR NOT NULL,         -- one row per symbol (leverage kept when flat)
    qty             DECIMAL(38, 18) NOT NULL, -- signed: > 0 long, < 0 short
    entry_price     DECIMAL(38, 18) NOT NULL,
    leverage        INTEGER NOT NULL,
    margin_mode     VARCHAR NOT NULL,
    updated_at      TIMESTAMP NOT NULL
);

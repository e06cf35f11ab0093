-- Reconcile: positions (open and closed), the exchange's fills, and the income ledger.

CREATE SEQUENCE IF NOT EXISTS positions_seq START 1;
CREATE TABLE positions (
    position_id     BIGINT PRIMARY KEY DEFAULT nextval('positions_seq'),
    mode            VARCHAR NOT NULL,
    symbol          VARCHAR NOT NULL,
    side            VARCHAR NOT NULL,          -- BUY (long) | SELL (short)
    position_side   VARCHAR NOT NULL,          -- BOTH | LONG | SHORT
    qty             DECIMAL(38, 18) NOT NULL,  -- open quantity (last seen)
    entry_price     DECIMAL(38, 18),
    opened_at       TIMESTAMP NOT NULL,
    signal_seq      BIGINT,                    -- the signal that opened it (NULL when adopted)
    origin          VARCHAR NOT NULL,          -- qtrader | adopted
    stop_loss       DECIMAL(38, 18),           -- intended stop trigger
    take_profit     DECIMAL(38, 18),
    status          VARCHAR NOT NULL,          -- open | closed
    mark_price      DECIMAL(38, 18),
    unrealized_pnl  DECIMAL(38, 18),
    r_multiple      DECIMAL(38, 18),
    classification  VARCHAR,                   -- WINNER | TOXIC | NEUTRAL
    closed_at       TIMESTAMP,
    exit_price      DECIMAL(38, 18),
    exit_reason     VARCHAR,                   -- stop_loss | take_profit | signal_close | close_all | time_exit | liquidation | manual_or_unknown
    realized_pnl    DECIMAL(38, 18),           -- gross, from the exchange's fills
    fees            DECIMAL(38, 18),           -- commissions of its fills (positive = paid)
    funding         DECIMAL(38, 18),           -- funding while open (positive = received)
    updated_at      TIMESTAMP NOT NULL
);

CREATE TABLE fills (
    mode              VARCHAR NOT NULL,
    symbol            VARCHAR NOT NULL,
    trade_id          VARCHAR NOT NULL,
    order_id          VARCHAR NOT NULL,
    client_order_id   VARCHAR,                 -- ours, when the order is in `orders`
    side              VARCHAR NOT NULL,
    position_side     VARCHAR NOT NULL,
    qty               DECIMAL(38, 18) NOT NULL,
    price             DECIMAL(38, 18) NOT NULL,
    fee               DECIMAL(38, 18) NOT NULL, -- commission paid (positive), in fee_asset
    fee_asset         VARCHAR NOT NULL,
    realized_pnl      DECIMAL(38, 18) NOT NULL,
    maker             BOOLEAN NOT NULL,
    ts                TIMESTAMP NOT NULL,
    raw               VARCHAR NOT NULL,
    PRIMARY KEY (mode, symbol, trade_id)
);

CREATE TABLE income (
    mode         VARCHAR NOT NULL,
    tran_id      VARCHAR NOT NULL,
    income_type  VARCHAR NOT NULL,             -- FUNDING_FEE | COMMISSION | REALIZED_PNL | TRANSFER | ...
    symbol       VARCHAR,
    amount       DECIMAL(38, 18) NOT NULL,     -- signed, in asset
    asset        VARCHAR NOT NULL,
    trade_id     VARCHAR,
    ts           TIMESTAMP NOT NULL,
    raw          VARCHAR NOT NULL,
    PRIMARY KEY (mode, tran_id, income_type)
);

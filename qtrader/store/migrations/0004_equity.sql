-- Equity snapshots: one per execute (and later reconcile) run; the risk engine reads the
-- start-of-day equity and the peak from here.
CREATE TABLE equity (
    ts              TIMESTAMP NOT NULL,
    mode            VARCHAR NOT NULL,
    run_id          BIGINT,
    wallet_balance  DECIMAL(38, 18) NOT NULL,
    unrealized_pnl  DECIMAL(38, 18) NOT NULL,
    equity          DECIMAL(38, 18) NOT NULL
);

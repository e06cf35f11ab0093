-- Positions derived from the exchange's fills ledger (domain/ledger.py, steps/ledger.py):
-- each row is one lifecycle of a symbol's leg, found by its first fill.
ALTER TABLE positions ADD COLUMN open_trade_id VARCHAR;   -- its first fill ('carried': opened before the ledger's window)
ALTER TABLE positions ADD COLUMN opened_by VARCHAR;       -- flat | flip | carried
ALTER TABLE positions ADD COLUMN carried_qty DECIMAL(38, 18);  -- quantity held before the first fill (signed)
ALTER TABLE positions ADD COLUMN close_trade_id VARCHAR;  -- the fill that closed it
ALTER TABLE positions ADD COLUMN close_order_id VARCHAR;  -- that fill's order: decides exit_reason
ALTER TABLE positions ADD COLUMN resting_stop DECIMAL(38, 18);    -- stop trigger on the exchange (last reconcile)
ALTER TABLE positions ADD COLUMN resting_target DECIMAL(38, 18);  -- take-profit trigger on the exchange
-- Rows written before this migration were inferred from what consecutive reconciles saw:
-- the next reconcile (or pnl-report) re-derives every symbol from its fills.
INSERT OR REPLACE INTO state
SELECT 'ledger_rederive', 'true', now()::TIMESTAMP WHERE EXISTS (SELECT 1 FROM positions);

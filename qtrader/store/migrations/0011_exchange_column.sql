-- Multi-exchange (issue 16): every record names the exchange it came from or went to
-- (binanceusdm | bybit | okx; paper rows name the exchange the run was configured for).
-- Equity snapshots get theirs from the run that took them (equity.run_id → runs.exchange).
-- Rows written before this migration were all Binance USDⓈ-M. A database keeps one exchange
-- per mode (testnet, live): qtrader refuses to mix them (use another --db).
ALTER TABLE runs ADD COLUMN exchange VARCHAR;
ALTER TABLE orders ADD COLUMN exchange VARCHAR;
ALTER TABLE fills ADD COLUMN exchange VARCHAR;
ALTER TABLE income ADD COLUMN exchange VARCHAR;
ALTER TABLE positions ADD COLUMN exchange VARCHAR;
ALTER TABLE exchange_calls ADD COLUMN exchange VARCHAR;
ALTER TABLE market_cache ADD COLUMN exchange VARCHAR;
ALTER TABLE symbol_setup ADD COLUMN exchange VARCHAR;
-- What a rejection meant, in qtrader's words (domain.orders.Refusal), whatever the exchange's
-- number for it: the rules decide on this, error_code stays for people.
ALTER TABLE orders ADD COLUMN refusal VARCHAR;

UPDATE runs SET exchange = 'binanceusdm' WHERE mode IS NOT NULL;
UPDATE orders SET exchange = 'binanceusdm';
UPDATE fills SET exchange = 'binanceusdm';
UPDATE income SET exchange = 'binanceusdm';
UPDATE positions SET exchange = 'binanceusdm';
UPDATE exchange_calls SET exchange = 'binanceusdm';
UPDATE market_cache SET exchange = 'binanceusdm';
UPDATE symbol_setup SET exchange = 'binanceusdm';
UPDATE orders SET refusal = CASE
    WHEN error_code = -2019 THEN 'insufficient_margin'
    WHEN error_code = -4164 THEN 'below_min_notional'
    WHEN error_code IN (-1111, -4003, -4005) THEN 'bad_quantity'
    WHEN error_code = -4014 THEN 'bad_price'
    WHEN error_code = -1121 THEN 'unknown_symbol'
    WHEN error_code = -4140 THEN 'market_closed'
    WHEN error_code = -2021 THEN 'would_trigger_now'
    WHEN error_code = -2022 THEN 'nothing_to_reduce'
    WHEN error_code = -4061 THEN 'position_mode_changed'
    WHEN error_code IN (-4015, -4116) THEN 'duplicate_client_id'
    ELSE 'other' END
WHERE error_code IS NOT NULL;

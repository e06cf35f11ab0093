-- DuckDB's ART indexes make every UPDATE of an indexed table a delete + insert in the index
-- (benchmarks/execute_requests.py: ~2.7 ms per signal-status update). Its scans, with
-- zone maps, need no secondary index at qtrader's sizes. Only constraint indexes stay
-- (orders.client_order_id is the guard against a second entry for one signal).
DROP INDEX IF EXISTS signals_status_idx;
DROP INDEX IF EXISTS orders_signal_idx;
DROP INDEX IF EXISTS decisions_signal_idx;

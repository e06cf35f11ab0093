-- Report views: a public interface (docs/concepts/reporting.md, "SQL views"). Re-created on every open, so a
-- change here reaches every database at once. Money columns stay DECIMAL; ratios are DOUBLE.

-- One row per closed position.
CREATE OR REPLACE VIEW v_trades AS
SELECT
    p.position_id,
    p.symbol,
    CASE p.side WHEN 'BUY' THEN 'long' ELSE 'short' END                  AS side,
    p.opened_at,
    p.closed_at,
    p.qty,
    p.entry_price,
    p.exit_price,
    coalesce(p.realized_pnl, 0)                                         AS gross_pnl,
    coalesce(p.fees, 0)                                                 AS fees,
    coalesce(p.funding, 0)                                              AS funding,
    coalesce(p.realized_pnl, 0) - coalesce(p.fees, 0) + coalesce(p.funding, 0) AS net_pnl,
    100 * (coalesce(p.realized_pnl, 0) - coalesce(p.fees, 0) + coalesce(p.funding, 0))::DOUBLE
        / nullif(p.entry_price::DOUBLE * p.qty::DOUBLE, 0)              AS return_pct,
    (coalesce(p.realized_pnl, 0) - coalesce(p.fees, 0) + coalesce(p.funding, 0))::DOUBLE
        / nullif(abs(p.entry_price::DOUBLE - p.stop_loss::DOUBLE) * p.qty::DOUBLE, 0) AS r_multiple,
    epoch(p.closed_at - p.opened_at)                                    AS holding_s,
    p.exit_reason,
    -- entry vs the signal's price, in basis points; positive = paid more than the signal asked
    10000 * (p.entry_price::DOUBLE - s.entry_price::DOUBLE) / nullif(s.entry_price::DOUBLE, 0)
        * CASE p.side WHEN 'BUY' THEN 1 ELSE -1 END                     AS slippage_bps,
    p.origin,
    p.mode,
    p.exchange
FROM positions p
LEFT JOIN signals s ON s.seq = p.signal_seq
WHERE p.status = 'closed';

-- Per UTC day, the trades closed that day (realized PnL, fees and funding of each, as in
-- v_trades, so a day's numbers are the same in every table) and equity at the day's close.
CREATE OR REPLACE VIEW v_daily_pnl AS
WITH trade_days AS (
    SELECT mode, closed_at::DATE AS day, sum(gross_pnl) AS realized_pnl, sum(fees) AS fees,
           sum(funding) AS funding, count(*) AS trades, any_value(exchange) AS exchange
    FROM v_trades GROUP BY mode, closed_at::DATE
), equity_days AS (
    SELECT e.mode, e.ts::DATE AS day, arg_max(e.equity, e.ts) AS equity,
           any_value(r.exchange) AS exchange
    FROM equity e LEFT JOIN runs r ON r.run_id = e.run_id GROUP BY e.mode, e.ts::DATE
), days AS (
    SELECT mode, day FROM trade_days UNION SELECT mode, day FROM equity_days
)
SELECT
    d.day,
    coalesce(t.realized_pnl, 0)                                         AS realized_pnl,
    coalesce(t.fees, 0)                                                 AS fees,
    coalesce(t.funding, 0)                                              AS funding,
    coalesce(t.realized_pnl, 0) - coalesce(t.fees, 0) + coalesce(t.funding, 0) AS net_pnl,
    coalesce(t.trades, 0)                                               AS trades,
    e.equity,
    d.mode,
    coalesce(t.exchange, e.exchange)                                    AS exchange
FROM days d
LEFT JOIN trade_days t USING (mode, day)
LEFT JOIN equity_days e USING (mode, day);

-- Open positions at their last mark (as of the last reconcile).
-- stop_loss / take_profit: the triggers resting on the exchange as the last reconcile left
-- them (NULL: nothing rests there); intended_*: what qtrader meant to place.
CREATE OR REPLACE VIEW v_open_positions AS
SELECT symbol, CASE side WHEN 'BUY' THEN 'long' ELSE 'short' END AS side, qty, entry_price,
       mark_price, unrealized_pnl, resting_stop AS stop_loss, resting_target AS take_profit,
       opened_at, classification, r_multiple, origin, mode, stop_loss AS intended_stop_loss,
       take_profit AS intended_take_profit, exchange
FROM positions WHERE status = 'open';

-- Equity snapshots.
CREATE OR REPLACE VIEW v_equity AS
-- exchange: the one the snapshot's run talked to.
SELECT e.ts, e.wallet_balance, e.unrealized_pnl, e.equity, e.mode, r.exchange
FROM equity e LEFT JOIN runs r ON r.run_id = e.run_id;

-- Halts as a set per mode, one row per kind (invariant 6: a halt is never weakened by another).
-- How a halt lifts follows from its kind (qtrader/domain/halts.py), so it is not stored.
CREATE TABLE halts (
    mode     VARCHAR NOT NULL,            -- paper | testnet | live
    kind     VARCHAR NOT NULL,            -- kill_switch | drawdown | daily_loss | losing_streak | exchange_unhealthy
    reason   VARCHAR NOT NULL,
    since    TIMESTAMP NOT NULL,          -- when it was first added
    day      DATE NOT NULL,               -- the UTC day it was last tripped (daily_loss lifts after it)
    numbers  VARCHAR,                     -- JSON: what the breaker compared
    run_id   BIGINT,
    PRIMARY KEY (mode, kind)
);

-- The single `halt` state key held for every mode at once: keep it in every mode, so the
-- migration weakens nothing. A halt of no or an unknown kind becomes a kill switch (lifted
-- only by resume); consecutive_losses is now called losing_streak.
INSERT INTO halts
SELECT
    m.mode,
    CASE
        WHEN s.value->>'kind' = 'consecutive_losses' THEN 'losing_streak'
        WHEN s.value->>'kind' IN ('drawdown', 'daily_loss', 'kill_switch') THEN s.value->>'kind'
        ELSE 'kill_switch'
    END,
    coalesce(s.value->>'reason', 'halt carried over from before halts were kept per mode'),
    coalesce(TRY_CAST(replace(s.value->>'since', 'Z', '') AS TIMESTAMP), s.updated_at),
    coalesce(TRY_CAST(s.value->>'day' AS DATE), CAST(s.updated_at AS DATE)),
    coalesce(s.value->>'numbers', '{}'),
    NULL
FROM state s, (VALUES ('paper'), ('testnet'), ('live')) AS m(mode)
WHERE s.key = 'halt';

DELETE FROM state WHERE key = 'halt';

-- The exchange-health breaker counts runs whose requests failed to get an answer (timeouts,
-- 5xx, internal errors, rate limits), told apart from rejections when the call is journaled.
ALTER TABLE exchange_calls ADD COLUMN unhealthy BOOLEAN;

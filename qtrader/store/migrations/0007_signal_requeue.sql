-- `qtrader requeue` puts an expired or rejected signal back to pending: the signal's TTL
-- clock then runs from this moment instead of the signal's own timestamp.
ALTER TABLE signals ADD COLUMN requeued_at TIMESTAMP;

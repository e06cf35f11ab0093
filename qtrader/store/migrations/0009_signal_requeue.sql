-- Numbered 0009 to stay clear of the 0007/0008 that parallel branches add (issue 13, 19).
-- `qtrader requeue` puts an expired or rejected signal back to pending: the signal's TTL
-- clock then runs from this moment instead of the signal's own timestamp.
ALTER TABLE signals ADD COLUMN requeued_at TIMESTAMP;

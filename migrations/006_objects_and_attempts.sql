-- Stored objects nothing points at, and attempts whose outcome was never recorded.

-- The orphan sweep asks, one listed page of keys at a time, which keys a row still references
-- (an upload whose object is not marked deleted). Only such rows are indexed.
CREATE INDEX uploads_live_object_key ON uploads (object_key) WHERE object_deleted_at IS NULL;

-- An attempt is recorded as started before its request is sent and finished after it, so a request
-- that reached the receiver before the dispatcher died still has its row. Until it is finished,
-- finished_at and duration_ms are NULL; the next claim of the delivery closes it as `interrupted`.
ALTER TABLE delivery_attempts
  ALTER COLUMN duration_ms DROP NOT NULL,
  ADD COLUMN finished_at timestamptz;
UPDATE delivery_attempts SET finished_at = started_at + make_interval(secs => duration_ms / 1000.0);
CREATE INDEX delivery_attempts_unfinished ON delivery_attempts (delivery_id) WHERE finished_at IS NULL;

-- Wake dispatchers only when a pending row's due time or status really changed. A trigger
-- `UPDATE OF col` fires whenever col is assigned, even to its own value, and the claim assigns
-- delivery_status (to settle a delivery whose interrupted attempt spent the budget): every claim
-- would otherwise wake every dispatcher for nothing.
DROP TRIGGER deliveries_notify ON deliveries;
CREATE TRIGGER deliveries_notify_insert AFTER INSERT ON deliveries
  FOR EACH ROW WHEN (NEW.delivery_status = 'pending') EXECUTE FUNCTION deliveries_notify();
CREATE TRIGGER deliveries_notify_update AFTER UPDATE OF next_attempt_at, delivery_status ON deliveries
  FOR EACH ROW WHEN (NEW.delivery_status = 'pending'
                     AND (OLD.next_attempt_at IS DISTINCT FROM NEW.next_attempt_at
                          OR OLD.delivery_status IS DISTINCT FROM NEW.delivery_status))
  EXECUTE FUNCTION deliveries_notify();

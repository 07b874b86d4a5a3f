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

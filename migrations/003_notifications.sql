-- Notifications: a fencing token for the dispatcher's lease, manual redelivery runs, and the
-- indexes the delivery API and retention read through.

ALTER TABLE deliveries
  -- A new random token with every claim. An attempt is recorded only by the holder of the current
  -- token, so a dispatcher whose lease lapsed (paused, partitioned) can never record over the one
  -- that took the delivery over.
  ADD COLUMN lease_token uuid,
  -- The attempt number that opened the current retry run: 1, or the first attempt after a manual
  -- redelivery. The retry budget counts from here, so a redelivered delivery gets a full schedule.
  ADD COLUMN run_first_attempt integer NOT NULL DEFAULT 1;

-- The dispatcher's next wake-up: the earliest lease to lapse (a dispatcher may have died under it).
CREATE INDEX deliveries_leased ON deliveries (locked_until) WHERE delivery_status = 'pending' AND locked_until IS NOT NULL;

-- GET /deliveries without a status filter: newest first, per tenant.
CREATE INDEX deliveries_tenant_seq ON deliveries (tenant_id, seq DESC);

-- Retention scans: settled rows by last change.
CREATE INDEX deliveries_settled_updated ON deliveries (updated_at) WHERE delivery_status <> 'pending';
CREATE INDEX uploads_final_updated ON uploads (updated_at) WHERE status IN ('completed', 'failed');

-- Endpoint health: a circuit breaker per endpoint (state shared by every dispatcher), auto-disable
-- after failing for a long time (with an operational event), the per-minute attempt counts behind
-- the failure rate, probe and abort in the attempt audit, and per-upload order of deliveries.

ALTER TABLE endpoints
  -- closed: deliveries flow; open: they wait, and one probe at a time tests the receiver
  ADD COLUMN breaker_state text NOT NULL DEFAULT 'closed' CHECK (breaker_state IN ('closed', 'open')),
  ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0,
  ADD COLUMN last_success_at timestamptz,
  -- the first failure of the current streak (NULL after a success): auto-disable measures from it
  ADD COLUMN failing_since timestamptz,
  -- probes that failed since the breaker opened: the next one waits twice as long (up to a maximum)
  ADD COLUMN probes_failed integer NOT NULL DEFAULT 0,
  ADD COLUMN next_probe_at timestamptz,
  -- the lease token of the delivery sent as the probe: one probe at a time across dispatchers
  ADD COLUMN probe_delivery_id uuid,
  ADD COLUMN probe_lease_token uuid,
  -- the probe's lease, on the endpoint row itself so a racing claim re-checks it under the row lock
  ADD COLUMN probe_until timestamptz,
  -- why and when the service disabled it (NULL when enabled, or disabled by the tenant)
  ADD COLUMN disabled_reason text,
  ADD COLUMN disabled_at timestamptz;
-- The dispatcher's probe sweep: open endpoints by when they may be probed next.
CREATE INDEX endpoints_open_probe ON endpoints (next_probe_at) WHERE breaker_state = 'open';

-- Attempts and failures per endpoint and minute, written as each attempt finishes: the failure rate
-- of the last hour is the sum of at most 60 rows, whatever the traffic. Rows older than two hours
-- are deleted by the same writes.
CREATE TABLE endpoint_attempt_minutes (
  endpoint_id uuid NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
  minute timestamptz NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  failures integer NOT NULL DEFAULT 0,
  PRIMARY KEY (endpoint_id, minute)
);

-- Operational events: not about an upload, so no upload attempt either.
ALTER TABLE outbox_events DROP CONSTRAINT outbox_events_event_type_check;
ALTER TABLE outbox_events ADD CONSTRAINT outbox_events_event_type_check
  CHECK (event_type IN ('upload.processing', 'upload.completed', 'upload.failed', 'endpoint.disabled'));
ALTER TABLE deliveries ALTER COLUMN upload_attempt DROP NOT NULL;

-- probe: the one attempt an open breaker lets through (charged to no delivery's retry budget).
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_trigger_check;
ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_trigger_check
  CHECK (trigger IN ('scheduled', 'manual', 'probe'));

-- Per-upload order: a delivery waits while an older one of the same upload and target is pending,
-- and a newer outcome supersedes older pending ones.
CREATE INDEX deliveries_upload_target_pending ON deliveries (upload_id, target_key, seq)
  WHERE delivery_status = 'pending' AND upload_id IS NOT NULL;

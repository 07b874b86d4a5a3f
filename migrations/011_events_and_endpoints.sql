-- Events, then deliveries (Svix's message → attempts per endpoint). The load transaction writes one
-- event to outbox_events and nothing else; the dispatcher expands each event into one delivery per
-- target — the upload's callbackUrl, each matching enabled endpoint of the tenant — idempotently
-- (one delivery per event and target, whoever expands and however often).

-- Endpoints a tenant registers once: where to send, which event types (empty: all), own secret.
CREATE TABLE endpoints (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,   -- keyset pagination of GET /endpoints
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  url text NOT NULL,
  description text NOT NULL DEFAULT '',
  event_types text[] NOT NULL DEFAULT '{}',        -- empty: every event type
  channel text NOT NULL DEFAULT 'webhook' CHECK (channel IN ('webhook', 'slack')),
  enabled boolean NOT NULL DEFAULT true,
  rate_limit_per_second integer CHECK (rate_limit_per_second > 0), -- stored; NULL: unlimited
  secret text NOT NULL,                            -- Standard Webhooks whsec_…
  previous_secret text,                            -- keeps signing until previous_secret_expires_at
  previous_secret_expires_at timestamptz,
  -- clock_timestamp(), like an event's: an endpoint receives only events that happened after it existed
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX endpoints_tenant_seq ON endpoints (tenant_id, seq DESC);

-- The outbox proper: one row per thing that happened. expanded_at is set in the statement that
-- writes its deliveries, so an event is either unexpanded or has all of them.
CREATE TABLE outbox_events (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  event_type text NOT NULL CHECK (event_type IN ('upload.processing', 'upload.completed', 'upload.failed')),
  upload_id uuid REFERENCES uploads (id) ON DELETE SET NULL,
  upload_attempt integer,                          -- the processing attempt, for upload events
  payload jsonb NOT NULL,                          -- frozen when the event happened
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  expanded_at timestamptz,
  -- A re-run of the same attempt cannot write its event twice.
  CONSTRAINT outbox_events_once UNIQUE (upload_id, event_type, upload_attempt)
);
CREATE INDEX outbox_events_unexpanded ON outbox_events (seq) WHERE expanded_at IS NULL;
CREATE INDEX outbox_events_created ON outbox_events (created_at);

ALTER TABLE deliveries
  ADD COLUMN event_id uuid REFERENCES outbox_events (id) ON DELETE CASCADE,
  -- Which target of the event: 'callback' (the upload's callbackUrl) or 'endpoint:<id>'.
  ADD COLUMN target_key text NOT NULL DEFAULT 'callback',
  -- The endpoint, while it exists (deleting one settles its pending deliveries first, keeps the audit).
  ADD COLUMN endpoint_id uuid REFERENCES endpoints (id) ON DELETE SET NULL;

-- Existing rows, pending ones included, each get the event they were written for (same id, same
-- time), so nothing in flight is lost or re-expanded: they are already expanded.
INSERT INTO outbox_events (id, tenant_id, event_type, upload_id, upload_attempt, payload, created_at, expanded_at)
SELECT d.id, d.tenant_id, d.event, d.upload_id, d.upload_attempt, d.payload, d.created_at, d.created_at
  FROM deliveries d ORDER BY d.seq;
UPDATE deliveries SET event_id = id;

ALTER TABLE deliveries
  ALTER COLUMN event_id SET NOT NULL,
  ALTER COLUMN target_key DROP DEFAULT,
  DROP CONSTRAINT deliveries_event_check,          -- the event types are the events table's to check
  DROP CONSTRAINT deliveries_once,
  ADD CONSTRAINT deliveries_once UNIQUE (event_id, target_key);
-- Pending deliveries of one endpoint: holding them while it is disabled, settling them when it goes.
CREATE INDEX deliveries_endpoint_pending ON deliveries (endpoint_id) WHERE delivery_status = 'pending';

-- Wake the dispatchers when an event commits, as for a delivery (same channel, same function).
CREATE TRIGGER outbox_events_notify AFTER INSERT ON outbox_events
  FOR EACH ROW EXECUTE FUNCTION deliveries_notify();

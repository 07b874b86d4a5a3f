-- Processing: the shipped dataset, rejected rows, worker leases; notifications: outbox + attempt audit.

ALTER TABLE uploads
  ADD COLUMN csv_header text,                        -- the file's header line, for errors.csv
  ADD COLUMN callback_channel text NOT NULL DEFAULT 'webhook' CHECK (callback_channel IN ('webhook', 'slack'));

-- upload_id is not sent per row: COPY fills it from a setting of the load's transaction.
CREATE TABLE webhook_events (
  upload_id uuid NOT NULL DEFAULT current_setting('app.upload_id')::uuid,
  line_number bigint NOT NULL,
  event_id uuid NOT NULL,
  event_type text NOT NULL,
  source text,
  customer_id text,
  amount_cents bigint,
  currency text,
  occurred_at timestamptz NOT NULL,
  payload jsonb,
  -- A row of a file can be loaded once: a duplicated load cannot commit, whatever the bug.
  CONSTRAINT webhook_events_upload_line UNIQUE (upload_id, line_number)
);

CREATE TABLE upload_errors (
  upload_id uuid NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
  line bigint NOT NULL,
  column_name text,
  code text NOT NULL,
  message text NOT NULL,
  raw text NOT NULL,
  PRIMARY KEY (upload_id, line)
);

-- Heartbeats of live workers: a job locked by a worker without a live lease is released.
CREATE TABLE worker_leases (
  worker_id text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);

-- The transactional outbox: written only in the transaction that gives an upload its final status.
CREATE TABLE deliveries (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),   -- also the webhook-id, stable across retries
  seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  upload_id uuid REFERENCES uploads (id) ON DELETE SET NULL,
  upload_attempt integer NOT NULL,
  event text NOT NULL CHECK (event IN ('upload.completed', 'upload.failed')),
  channel text NOT NULL CHECK (channel IN ('webhook', 'slack', 'none')),
  target text,
  payload jsonb NOT NULL,
  delivery_status text NOT NULL DEFAULT 'pending'
    CHECK (delivery_status IN ('pending', 'sent', 'failed', 'skipped')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  locked_until timestamptz,                        -- a dispatcher's lease while it sends
  redeliver_requested boolean NOT NULL DEFAULT false, -- the next attempt is a manual one
  last_error text,
  delivered_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT deliveries_once UNIQUE (upload_id, event, upload_attempt)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE delivery_status = 'pending';
CREATE INDEX deliveries_tenant_status ON deliveries (tenant_id, delivery_status, seq DESC);

CREATE TABLE delivery_attempts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
  attempt integer NOT NULL,
  trigger text NOT NULL DEFAULT 'scheduled' CHECK (trigger IN ('scheduled', 'manual')),
  started_at timestamptz NOT NULL,
  duration_ms integer NOT NULL,
  response_status integer,
  response_excerpt text,
  error_code text,
  error_message text,
  next_attempt_at timestamptz,
  UNIQUE (delivery_id, attempt)
);
CREATE INDEX delivery_attempts_started ON delivery_attempts (started_at);

-- Wake dispatchers as soon as an outbox row commits (NOTIFY is delivered at commit).
CREATE FUNCTION deliveries_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('deliveries_due', NEW.id::text);
  RETURN NULL;
END $$;
CREATE TRIGGER deliveries_notify AFTER INSERT OR UPDATE OF next_attempt_at, delivery_status ON deliveries
  FOR EACH ROW WHEN (NEW.delivery_status = 'pending') EXECUTE FUNCTION deliveries_notify();

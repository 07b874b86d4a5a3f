-- 015: endpoint recovery operations, and the email channel of endpoints.
-- Recovery of an endpoint after an outage (POST /endpoints/:id/recover) as a long-running operation
-- (Google AIP-151): the request writes an operation and queues a graphile-worker job in one
-- transaction; the job queues the endpoint's deliveries of the window and marks the operation done
-- in one transaction of its own, so a retried job finds it done and queues nothing twice.
CREATE TABLE operations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('endpoint.recover')),
  -- not a foreign key: the operation keeps naming the endpoint it recovered after that is deleted
  endpoint_id uuid NOT NULL,
  since timestamptz NOT NULL,
  until timestamptz NOT NULL CHECK (since < until),
  done boolean NOT NULL DEFAULT false,
  -- deliveries queued (failed ones queued again + missed ones created); set when done without error
  queued integer,
  error_code text,
  error_message text,
  created_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE INDEX operations_tenant ON operations (tenant_id, created_at);
-- The window is by the time an event happened: a delivery's created_at is its event's.
CREATE INDEX deliveries_endpoint_created ON deliveries (endpoint_id, created_at) WHERE endpoint_id IS NOT NULL;

-- The email channel: url is mailto:<address>, sent through the configured SMTP server.
ALTER TABLE endpoints DROP CONSTRAINT endpoints_channel_check;
ALTER TABLE endpoints ADD CONSTRAINT endpoints_channel_check CHECK (channel IN ('webhook', 'slack', 'email'));
ALTER TABLE deliveries DROP CONSTRAINT deliveries_channel_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_channel_check CHECK (channel IN ('webhook', 'slack', 'email', 'none'));

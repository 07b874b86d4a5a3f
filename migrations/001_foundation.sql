-- Tenants, their API keys, uploads and idempotency records.

CREATE TABLE tenants (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
  webhook_secret text NOT NULL,
  -- During rotation the previous secret keeps signing until previous_secret_expires_at.
  previous_webhook_secret text,
  previous_secret_expires_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  key_hash bytea NOT NULL UNIQUE,  -- SHA-256 of the key; the key itself is never stored
  prefix text NOT NULL,            -- first characters, for display only
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz
);

CREATE TABLE uploads (
  id uuid PRIMARY KEY,
  -- Keyset pagination order: newest first by a strictly increasing number, no timestamp ties.
  seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  dataset text NOT NULL,
  filename text NOT NULL,
  size_bytes bigint NOT NULL,
  sha256 text NOT NULL,
  object_key text NOT NULL,
  object_deleted_at timestamptz,
  status text NOT NULL DEFAULT 'uploaded'
    CHECK (status IN ('uploaded', 'processing', 'completed', 'failed')),
  rows_processed bigint NOT NULL DEFAULT 0,
  rows_failed bigint NOT NULL DEFAULT 0,
  bytes_processed bigint NOT NULL DEFAULT 0,
  error_code text,
  error text,
  callback_url text,
  max_errors bigint,
  max_error_ratio double precision CHECK (max_error_ratio BETWEEN 0 AND 1),
  unknown_columns text[],
  attempt integer NOT NULL DEFAULT 0,   -- processing attempts started (a retry or a crash re-run adds one)
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  completed_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX uploads_tenant_seq ON uploads (tenant_id, seq DESC);
CREATE INDEX uploads_tenant_status_seq ON uploads (tenant_id, status, seq DESC);

-- The first response to an upload sent with an Idempotency-Key, replayed for 24 h.
CREATE TABLE idempotency_keys (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  key text NOT NULL,
  request_hash text NOT NULL,
  upload_id uuid NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
  response jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, key)
);

-- Direct-to-storage uploads: the client PUTs the parts of an S3 multipart upload straight to the store
-- with presigned URLs, then asks the API to complete it. Until then the upload is pending here, not in
-- `uploads`: completing deletes this row and inserts the upload with its job in one transaction, so an
-- upload row always has its whole file and the upload status list stays as it is.

CREATE TABLE direct_uploads (
  id uuid PRIMARY KEY,                  -- becomes uploads.id on completion
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  dataset text NOT NULL,
  filename text NOT NULL,
  size_bytes bigint NOT NULL CHECK (size_bytes > 0),   -- declared by the client; checked against the object
  object_key text NOT NULL,
  s3_upload_id text NOT NULL,           -- the store's multipart UploadId: never shown to the client
  part_size_bytes bigint NOT NULL,
  part_count integer NOT NULL CHECK (part_count BETWEEN 1 AND 10000),
  callback_url text,
  callback_channel text NOT NULL DEFAULT 'webhook' CHECK (callback_channel IN ('webhook', 'slack')),
  max_errors bigint,
  max_error_ratio double precision CHECK (max_error_ratio BETWEEN 0 AND 1),
  idempotency_key text,
  request_hash text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX direct_uploads_idempotency ON direct_uploads (tenant_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX direct_uploads_expiry ON direct_uploads (expires_at);

-- The orphan sweep asks which keys a pending direct upload holds (its object appears at completion,
-- before the row that references it commits).
CREATE INDEX direct_uploads_object_key ON direct_uploads (object_key);

-- A direct upload's bytes never pass through the API, so it has no SHA-256 of the file: null.
ALTER TABLE uploads ALTER COLUMN sha256 DROP NOT NULL;

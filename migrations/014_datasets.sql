-- Datasets as data: a tenant defines its own tables (src/datasets/). The definition is JSON, checked by
-- the service before any DDL; the table itself lives in the tenant's own schema (t_<tenant id hex>).
-- Every change of a definition is a new version; an upload records the version it was loaded with.

CREATE TABLE datasets (
  tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name text NOT NULL CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
  version integer NOT NULL CHECK (version >= 1),
  -- the normalised definition (src/datasets/definition.ts): columns, key
  definition jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, name)
);

CREATE TABLE dataset_versions (
  tenant_id uuid NOT NULL,
  name text NOT NULL,
  version integer NOT NULL,
  definition jsonb NOT NULL,
  -- the DDL this version applied (CREATE TABLE, or ALTER TABLE statements; empty for a metadata-only change)
  applied_sql text[] NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, name, version),
  FOREIGN KEY (tenant_id, name) REFERENCES datasets (tenant_id, name) ON DELETE CASCADE
);

-- The definition version the rows were loaded with (set when accepted, then by the load that commits);
-- NULL for the built-in webhook_events.
ALTER TABLE uploads ADD COLUMN dataset_version integer;


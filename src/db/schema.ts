// Row types of the tables (the migrations are the truth; these mirror them for Kysely).
import type { ColumnType, Generated } from 'kysely';

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type DefaultTimestamp = ColumnType<Date, Date | string | undefined, Date | string>;

export interface TenantsTable {
  id: Generated<string>;
  name: string;
  webhook_secret: string;
  previous_webhook_secret: string | null;
  previous_secret_expires_at: Timestamp | null;
  created_at: DefaultTimestamp;
}

export interface ApiKeysTable {
  id: Generated<string>;
  tenant_id: string;
  key_hash: Buffer;
  prefix: string;
  created_at: DefaultTimestamp;
  revoked_at: Timestamp | null;
}

export type UploadStatus = 'uploaded' | 'processing' | 'completed' | 'failed';

export interface UploadsTable {
  id: string;
  seq: Generated<number>;
  tenant_id: string;
  dataset: string;
  filename: string;
  size_bytes: number;
  /** null for a direct upload: its bytes never pass through the API */
  sha256: string | null;
  object_key: string;
  object_deleted_at: Timestamp | null;
  status: ColumnType<UploadStatus, UploadStatus | undefined, UploadStatus>;
  rows_processed: Generated<number>;
  rows_failed: Generated<number>;
  bytes_processed: Generated<number>;
  uncompressed_bytes_processed: number | null;
  compression: 'gzip' | 'none' | null;
  error_code: string | null;
  error: string | null;
  callback_url: string | null;
  max_errors: number | null;
  max_error_ratio: number | null;
  unknown_columns: string[] | null;
  attempt: Generated<number>;
  csv_header: string | null;
  callback_channel: Generated<'webhook' | 'slack'>;
  /** the tenant dataset's definition version (migrations/014_datasets.sql); null for a built-in dataset */
  dataset_version: number | null;
  /** migrations/016_loading_modes.sql: how the load treats the dataset's rows */
  mode: ColumnType<'append' | 'upsert' | 'replace', 'append' | 'upsert' | 'replace' | undefined, never>;
  /** rows an upsert or replace inserted / an upsert updated; null for append (rows_processed are inserted) */
  rows_inserted: number | null;
  rows_updated: number | null;
  /** migrations/018_load_undo_and_dry_run.sql: validated in full, nothing loaded */
  dry_run: ColumnType<boolean, boolean | undefined, never>;
  /** when DELETE /uploads/:id/rows removed the rows the upload appended, and how many; null before */
  rows_removed_at: Timestamp | null;
  rows_removed: number | null;
  created_at: DefaultTimestamp;
  started_at: Timestamp | null;
  completed_at: Timestamp | null;
  updated_at: DefaultTimestamp;
}

export interface IdempotencyKeysTable {
  tenant_id: string;
  key: string;
  request_hash: string;
  upload_id: string;
  response: unknown;
  created_at: DefaultTimestamp;
}

/** A direct-to-storage upload whose parts are still being sent (migrations/009_direct_uploads.sql). */
export interface DirectUploadsTable {
  id: string;
  tenant_id: string;
  dataset: string;
  filename: string;
  size_bytes: number;
  object_key: string;
  s3_upload_id: string;
  part_size_bytes: number;
  part_count: number;
  callback_url: string | null;
  callback_channel: 'webhook' | 'slack';
  max_errors: number | null;
  max_error_ratio: number | null;
  mode: ColumnType<'append' | 'upsert' | 'replace', 'append' | 'upsert' | 'replace' | undefined, never>;
  dry_run: ColumnType<boolean, boolean | undefined, never>;
  idempotency_key: string | null;
  request_hash: string;
  created_at: DefaultTimestamp;
  expires_at: Timestamp;
}

export interface EndpointsTable {
  id: Generated<string>;
  seq: Generated<number>;
  tenant_id: string;
  url: string;
  description: Generated<string>;
  event_types: ColumnType<string[], string[] | undefined, string[]>;
  channel: ColumnType<'webhook' | 'slack' | 'email', 'webhook' | 'slack' | 'email' | undefined, 'webhook' | 'slack' | 'email'>;
  enabled: Generated<boolean>;
  rate_limit_per_second: number | null;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Timestamp | null;
  created_at: DefaultTimestamp;
  updated_at: DefaultTimestamp;
  // Health (migration 013): written by the dispatcher (notify/health.repository.ts), read by the API.
  breaker_state: ColumnType<'closed' | 'open', 'closed' | 'open' | undefined, 'closed' | 'open'>;
  consecutive_failures: Generated<number>;
  last_success_at: Timestamp | null;
  failing_since: Timestamp | null;
  probes_failed: Generated<number>;
  next_probe_at: Timestamp | null;
  probe_delivery_id: string | null;
  probe_lease_token: string | null;
  probe_until: Timestamp | null;
  disabled_reason: string | null;
  disabled_at: Timestamp | null;
}

/** A tenant's dataset definition, current version (migrations/014_datasets.sql). */
export interface DatasetsTable {
  tenant_id: string;
  name: string;
  version: number;
  /** DatasetSpec (src/datasets/definition.ts) */
  definition: unknown;
  created_at: DefaultTimestamp;
  updated_at: DefaultTimestamp;
}

/** Every version a dataset definition has had, with the DDL it applied. */
export interface DatasetVersionsTable {
  tenant_id: string;
  name: string;
  version: number;
  definition: unknown;
  applied_sql: string[];
  created_at: DefaultTimestamp;
}

export interface DB {
  datasets: DatasetsTable;
  dataset_versions: DatasetVersionsTable;
  endpoints: EndpointsTable;
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
  uploads: UploadsTable;
  idempotency_keys: IdempotencyKeysTable;
  direct_uploads: DirectUploadsTable;
}

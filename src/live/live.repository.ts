// The reads behind the live streams: an upload's status body (exactly GET /uploads/:id), and the
// uploads of some tenants that changed recently (to catch up after a lost LISTEN connection).
import type { Kysely } from 'kysely';
import type pg from 'pg';
import type { DB } from '../db/schema.ts';
import { latestDeliverySummary } from '../notify/deliveries.repository.ts';
import { presentUpload } from '../uploads/present.ts';
import { findUpload } from '../uploads/uploads.repository.ts';
import type { UploadEvent } from './events.ts';

export type StatusBody = ReturnType<typeof presentUpload> & { delivery: Awaited<ReturnType<typeof latestDeliverySummary>> };

export interface LiveReadDeps {
  db: Kysely<DB>;
  pool: pg.Pool;
}

/** Whether the tenant can see the upload (it exists and is the tenant's): checked before any subscription. */
export async function isUploadVisible(db: Kysely<DB>, tenantId: string, uploadId: string): Promise<boolean> {
  const row = await db
    .selectFrom('uploads')
    .select('id')
    .where('id', '=', uploadId)
    .where('tenant_id', '=', tenantId)
    .executeTakeFirst();
  return row !== undefined;
}

/** The body of GET /uploads/:id, or undefined when the tenant cannot see the upload. */
export async function loadStatusBody(deps: LiveReadDeps, tenantId: string, uploadId: string): Promise<StatusBody | undefined> {
  const row = await findUpload(deps.db, tenantId, uploadId);
  if (!row) return undefined;
  return { ...presentUpload(row), delivery: await latestDeliverySummary(deps.pool, row.tenant_id, row.id) };
}

/** Uploads of these tenants updated in the last `seconds` (by the database clock), as NOTIFY payloads. */
export async function recentUploadEvents(
  pool: pg.Pool,
  tenantIds: readonly string[],
  seconds: number,
  limit: number,
): Promise<UploadEvent[]> {
  if (tenantIds.length === 0) return [];
  // The same object as ingest/upload-state.ts notifyUpload, so the feed cannot tell them apart.
  const { rows } = await pool.query<{ e: UploadEvent }>(
    `SELECT json_build_object(
              'uploadId', id, 'tenantId', tenant_id, 'status', status, 'attempt', attempt,
              'rowsProcessed', rows_processed, 'rowsFailed', rows_failed,
              'bytesProcessed', bytes_processed, 'sizeBytes', size_bytes,
              'error', CASE WHEN error IS NULL THEN NULL ELSE json_build_object('code', error_code, 'message', error) END,
              'at', now()) AS e
       FROM uploads
      WHERE tenant_id = ANY($1::uuid[]) AND updated_at >= now() - make_interval(secs => $2)
      ORDER BY updated_at
      LIMIT $3`,
    [tenantIds, seconds, limit],
  );
  return rows.map((r) => r.e);
}

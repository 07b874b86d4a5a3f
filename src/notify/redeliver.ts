// POST /deliveries/:id/redeliver: put a delivery back in the queue, due now, keeping its history.
import type pg from 'pg';
import { lockDelivery, markForRedelivery, type DeliveryRow } from './deliveries.repository.ts';

export type RedeliveryResult =
  | { outcome: 'queued'; delivery: DeliveryRow }
  | { outcome: 'not_found' | 'no_target' | 'in_flight' };

/**
 * The row lock makes the check and the change one step against a dispatcher claiming the row.
 * Refused: a delivery with no target (`skipped`: the upload had no callback; or its endpoint was
 * deleted), and one a dispatcher is sending right now (its outcome is seconds away; ask again then).
 */
export async function requestRedelivery(pool: pg.Pool, tenantId: string, id: string): Promise<RedeliveryResult> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const row = await lockDelivery(client, tenantId, id);
    let result: RedeliveryResult;
    if (!row) result = { outcome: 'not_found' };
    else if (row.target === null || row.channel === 'none' || (row.target_key !== 'callback' && row.endpoint_id === null)) {
      result = { outcome: 'no_target' }; // no callbackUrl, or its endpoint was deleted
    }
    else if (row.in_flight) result = { outcome: 'in_flight' };
    else result = { outcome: 'queued', delivery: await markForRedelivery(client, id) };
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

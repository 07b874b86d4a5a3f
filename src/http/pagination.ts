// Keyset pagination over a strictly increasing `seq`, newest first: the cursor names the last row seen.
import { AppError } from '../errors.ts';

export interface PageRequest {
  limit: number;
  beforeSeq?: number;
}

/** Validates `limit` (1–100, default 20) and decodes `cursor`. */
export function pageRequest(rawLimit: string | undefined, cursor: string | undefined): PageRequest {
  const limit = rawLimit === undefined ? 20 : Number(rawLimit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw new AppError('validation_failed', 'limit must be an integer from 1 to 100');
  }
  return cursor === undefined ? { limit } : { limit, beforeSeq: decodeCursor(cursor) };
}

/**
 * `fetch` is asked for one row more than the page: that extra row tells whether another page exists
 * without a count query.
 */
export async function keysetPage<Row extends { seq: number }, Item>(
  page: PageRequest,
  fetch: (query: PageRequest) => Promise<Row[]>,
  present: (row: Row) => Item,
): Promise<{ items: Item[]; nextCursor: string | null }> {
  const rows = await fetch({ ...page, limit: page.limit + 1 });
  const items = rows.slice(0, page.limit);
  const last = items.at(-1);
  return {
    items: items.map(present),
    nextCursor: rows.length > page.limit && last ? encodeCursor(last.seq) : null,
  };
}

function encodeCursor(seq: number): string {
  return Buffer.from(`s:${seq}`).toString('base64url');
}

function decodeCursor(cursor: string): number {
  const match = /^s:(\d{1,18})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw new AppError('validation_failed', 'cursor is invalid');
  return Number(match[1]);
}

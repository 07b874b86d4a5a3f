// Keyset pagination over a strictly increasing `seq`, newest first: the cursor names the last row seen.
import { Type } from '@sinclair/typebox';
import { AppError } from '../errors.ts';

export interface PageRequest {
  limit: number;
  beforeSeq?: number;
}

/** `limit` of a keyset-paginated list (the route's schema checks it). */
export const PageLimit = Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'items per page, 1–100' });

/** `cursor`: the `nextCursor` of the previous page, opaque (base64url). */
export const PageCursor = Type.String({
  pattern: '^[A-Za-z0-9_-]{1,64}$',
  description: 'the nextCursor of the previous page',
});

/** The page asked for: `limit` as the schema checked it (1–100, default 20) and `cursor` decoded (400 when it names no row). */
export function pageRequest(limit: number | undefined, cursor: string | undefined): PageRequest {
  const size = limit ?? 20;
  return cursor === undefined ? { limit: size } : { limit: size, beforeSeq: decodeCursor(cursor) };
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
  const match = /^s:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw new AppError('validation_failed', 'cursor is invalid');
  return Number(match[1]);
}

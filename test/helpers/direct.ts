// Direct-to-storage uploads as a client drives them: start (POST /uploads/direct), PUT the parts to
// their presigned URLs with a plain HTTP client (fetch), complete (POST /uploads/:id/complete).
import { expect } from 'vitest';
import type { DirectUploadStarted } from '../../src/uploads/direct-start.ts';
import type { TestApi, TestEnv } from './env.ts';
import { sendJson, type HttpResult } from './http.ts';

/** The 201 body of POST /uploads/direct, as the service types it. */
export type DirectStarted = DirectUploadStarted;

export interface DirectClient {
  start(body: Record<string, unknown>, headers?: Record<string, string>, key?: string): Promise<HttpResult>;
  /** starts an upload of `file` (filename events.csv unless `extra` says otherwise) and expects 201 */
  startOk(file: Buffer, extra?: Record<string, unknown>): Promise<DirectStarted>;
  complete(id: string, parts: unknown, key?: string): Promise<HttpResult>;
  /** the upload's pending row(s) in direct_uploads */
  pending(id: string): Promise<unknown[]>;
  /** the upload's row(s) in uploads */
  uploadRows(id: string): Promise<Record<string, unknown>[]>;
  /** nothing was recorded or enqueued for `id` */
  expectNothingEnqueued(id: string): Promise<void>;
}

/** A client of the direct-upload routes for `key` (read lazily: `env` exists only inside hooks and tests). */
export function directClient(env: { readonly t: TestEnv; readonly api: TestApi }, key: () => string): DirectClient {
  const client: DirectClient = {
    start: (body, headers = {}, k = key()) => sendJson(env.api.url, k, 'POST', '/uploads/direct', body, headers),
    async startOk(file, extra = {}) {
      const res = await client.start({ filename: 'events.csv', size: file.length, ...extra });
      expect(res.status, res.text).toBe(201);
      return res.body as DirectStarted;
    },
    complete: (id, parts, k = key()) => sendJson(env.api.url, k, 'POST', `/uploads/${id}/complete`, { parts }),
    pending: async (id) => (await env.t.pool.query('SELECT * FROM direct_uploads WHERE id = $1', [id])).rows,
    uploadRows: async (id) => (await env.t.pool.query('SELECT * FROM uploads WHERE id = $1', [id])).rows,
    async expectNothingEnqueued(id) {
      expect(await client.uploadRows(id)).toEqual([]);
      expect(await env.t.jobsFor(id)).toEqual([]);
    },
  };
  return client;
}

/** PUTs each part's slice of `file` to its presigned URL with fetch; returns the ETags the store answered. */
export async function putParts(started: DirectStarted, file: Buffer, only?: number[]): Promise<{ partNumber: number; etag: string }[]> {
  const numbers = only ?? started.parts.map((p) => p.partNumber);
  return Promise.all(
    numbers.map(async (n) => {
      const body = file.subarray((n - 1) * started.partSizeBytes, n * started.partSizeBytes);
      const res = await fetch(started.parts[n - 1]!.url, { method: 'PUT', body: new Uint8Array(body) });
      expect(res.status, await res.clone().text()).toBe(200);
      return { partNumber: n, etag: res.headers.get('etag')! };
    }),
  );
}

export const objectKeyOf = (tenantId: string, id: string) => `uploads/${tenantId}/${id}.csv`;

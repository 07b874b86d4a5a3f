// ObjectStore.putStream with several parts in flight, against a real s3rver over HTTP: the stored
// object is byte-exact, parts beyond each upload's first come out of the shared budget and all of it
// comes back — after a finished upload, after concurrent ones, after one whose source failed (which
// also leaves no part on disk and no object). And through the API, a store slower than the client:
// the body held back meanwhile is not "idle" for BODY_IDLE_TIMEOUT_MS.
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedS3, type EmbeddedS3Handle } from '../../src/storage/embedded-s3.ts';
import { ObjectStore } from '../../src/storage/object-store.ts';
import { createTestEnv, startApi } from '../helpers/env.ts';
import { generateCsv } from '../helpers/generate.ts';
import { upload } from '../helpers/http.ts';

const MiB = 2 ** 20;
const BUCKET = 'stream-api';
const CHUNK = 64 * 1024;
let dir: string;
let s3: EmbeddedS3Handle;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-parts-'));
  s3 = await startEmbeddedS3({ dataDir: dir, port: 0, bucket: BUCKET });
});
afterAll(async () => {
  await s3?.stop();
  await rm(dir, { recursive: true, force: true });
});

function storeWith(partsInFlight: number, bufferMiB: number): ObjectStore {
  return new ObjectStore(
    { endpoint: s3.endpoint, publicEndpoint: null, bucket: BUCKET, region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true },
    { partSizeBytes: 5 * MiB, partsInFlight, bufferBytes: bufferMiB * MiB },
  );
}

/** `bytes` of data that differ chunk by chunk (a part landing in the wrong place changes the hash), as fast as asked. */
function source(bytes: number, seed: number, failAfter?: number): { stream: Readable; sha256: string } {
  const chunks: Buffer[] = [];
  for (let at = 0, n = 0; at < bytes; at += CHUNK, n++) {
    chunks.push(Buffer.alloc(Math.min(CHUNK, bytes - at), `${seed}:${n};`));
  }
  const sha256 = createHash('sha256');
  for (const c of chunks) sha256.update(c);
  async function* gen() {
    let sent = 0;
    for (const c of chunks) {
      if (failAfter !== undefined && sent >= failAfter) throw new Error('the client went away');
      sent += c.length;
      yield c;
    }
  }
  return { stream: Readable.from(gen(), { objectMode: false }), sha256: sha256.digest('hex') };
}

async function storedSha256(store: ObjectStore, key: string): Promise<{ sha256: string; size: number }> {
  const { body } = await store.getStream(key);
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** The lowest the budget went while `during` ran (sampled every few ms). */
async function lowestBudget(store: ObjectStore, during: Promise<unknown>): Promise<number> {
  let lowest = store.partBudget.available;
  const timer = setInterval(() => (lowest = Math.min(lowest, store.partBudget.available)), 2);
  try {
    await during;
  } finally {
    clearInterval(timer);
  }
  return lowest;
}

async function partFiles(): Promise<string[]> {
  const all = await readdir(s3.directory, { recursive: true, withFileTypes: true });
  return all.filter((e) => e.isFile() && path.join(e.parentPath, e.name).includes('._S3rver_uploads')).map((e) => e.name);
}

describe('putStream with parts in flight', () => {
  it('stores a many-part stream byte-exact, taking its second and third parts from the budget and giving them back', async () => {
    const store = storeWith(3, 20);
    try {
      const { stream, sha256 } = source(33 * MiB + 12_345, 1);
      const lowest = await lowestBudget(store, store.putStream('a/many-parts.csv', stream));
      // A source faster than the store: two parts beyond its own were in hand at some point, not more.
      expect(lowest).toBe(10 * MiB);
      expect(store.partBudget.available).toBe(20 * MiB);
      expect(await storedSha256(store, 'a/many-parts.csv')).toEqual({ sha256, size: 33 * MiB + 12_345 });
    } finally {
      store.destroy();
    }
  });

  it('lets concurrent uploads share a budget smaller than they would take: all stored, none held past its end', async () => {
    const store = storeWith(4, 5); // one part beyond their own for all three together
    try {
      const sources = [1, 2, 3].map((n) => ({ key: `a/shared-${n}.csv`, ...source((12 + n) * MiB, 10 + n) }));
      const lowest = await lowestBudget(store, Promise.all(sources.map((s) => store.putStream(s.key, s.stream))));
      expect(lowest).toBe(0);
      expect(store.partBudget.available).toBe(5 * MiB);
      for (const [i, s] of sources.entries()) {
        expect(await storedSha256(store, s.key)).toEqual({ sha256: s.sha256, size: (13 + i) * MiB });
      }
    } finally {
      store.destroy();
    }
  });

  it('a source that fails mid-stream: the source’s error, no object, no part on disk, the budget whole again', async () => {
    const store = storeWith(3, 20);
    try {
      const { stream } = source(40 * MiB, 3, 17 * MiB);
      await expect(store.putStream('a/failed.csv', stream)).rejects.toThrow('the client went away');
      expect(store.partBudget.available).toBe(20 * MiB);
      expect(await store.head('a/failed.csv')).toBeNull();
      expect(await partFiles()).toEqual([]);
    } finally {
      store.destroy();
    }
  });
});

/** An HTTP proxy to the s3rver that holds every UploadPart `delayMs` before passing it on: a slow store. */
async function slowStoreProxy(delayMs: number): Promise<{ endpoint: string; partsDelayed: () => number; close: () => Promise<void> }> {
  const target = new URL(s3.endpoint);
  let delayed = 0;
  const server = http.createServer((req, res) => {
    const isPart = req.method === 'PUT' && /[?&]partNumber=/.test(req.url ?? '');
    if (isPart) delayed++;
    req.pause(); // the part stays in the socket while "the store" is busy
    setTimeout(() => {
      const out = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (upstream) => {
          res.writeHead(upstream.statusCode ?? 502, upstream.headers);
          upstream.pipe(res);
        },
      );
      out.on('error', () => res.destroy());
      req.pipe(out);
      req.resume();
    }, isPart ? delayMs : 0);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    partsDelayed: () => delayed,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('through the API, a store slower than the client', () => {
  it('holds the body back without it counting as idle: 202 and the whole file stored, though each part waited longer than BODY_IDLE_TIMEOUT_MS', async () => {
    const proxy = await slowStoreProxy(1200);
    const t = await createTestEnv({ S3_ENDPOINT: proxy.endpoint, BODY_IDLE_TIMEOUT_MS: '400' });
    const api = await startApi(t);
    try {
      const csv = generateCsv(110_000); // ~21 MB: five parts, two in flight at a time
      const { key, tenantId } = await t.newTenantKey();
      const res = await upload(api.url, key, { file: { content: csv } });
      expect(res.status, res.text).toBe(202);
      expect(proxy.partsDelayed()).toBeGreaterThanOrEqual(4);
      const { rows } = await t.pool.query('SELECT object_key, size_bytes, sha256 FROM uploads WHERE tenant_id = $1', [tenantId]);
      expect(rows).toHaveLength(1);
      expect(rows[0].size_bytes).toBe(csv.length);
      expect(rows[0].sha256).toBe(createHash('sha256').update(csv).digest('hex'));
      expect(await storedSha256(t.store, rows[0].object_key)).toEqual({ sha256: rows[0].sha256, size: csv.length });
      expect(t.store.partBudget.available).toBe(t.config.uploads.bufferBytes);
    } finally {
      await api.close();
      await t.close();
      await proxy.close();
    }
  }, 60_000);
});

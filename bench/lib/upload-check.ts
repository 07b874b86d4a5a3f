// After each upload of bench/upload.ts: the stored object is the file (size and sha256), then it goes.
import { createHash } from 'node:crypto';
import type { ObjectStore } from '../../src/storage/object-store.ts';
import type { Sent } from './upload-clients.ts';

/**
 * Checks the object of `sent` against the file (`size` bytes, hex `sha256`; null: a warm-up, only
 * deleted) and deletes it (with a tus upload's `.info`/`.part`). The sha256 is the one the service
 * recorded (GET /uploads/:id on `apiUrl`) or, when it recorded none (a direct upload: its bytes never
 * passed through the API), the object read back and hashed here. Throws on any difference.
 */
export async function checkAndDelete(
  store: ObjectStore,
  ctx: { size: number; apiKey: string },
  sent: Sent,
  sha256: string | null,
  apiUrl?: string,
): Promise<void> {
  try {
    if (sha256 === null) return;
    const stored = await store.head(sent.key);
    if (stored !== ctx.size) throw new Error(`${sent.key}: stored ${stored} bytes, sent ${ctx.size}`);
    if (!sent.uploadId || !apiUrl) return;
    const res = await fetch(new URL(`/uploads/${sent.uploadId}`, apiUrl), { headers: { authorization: `Bearer ${ctx.apiKey}` } });
    const body = (await res.json()) as { sha256?: string | null; sizeBytes?: number };
    const recorded = body.sha256 ?? (await storedSha256(store, sent.key));
    if (recorded !== sha256 || body.sizeBytes !== ctx.size) throw new Error(`upload ${sent.uploadId}: ${JSON.stringify(body)}, object sha256 ${recorded}`);
  } finally {
    await store.delete(sent.key);
    if (sent.tus) await Promise.all([store.delete(`${sent.key}.info`), store.delete(`${sent.key}.part`)]);
  }
}

async function storedSha256(store: ObjectStore, key: string): Promise<string> {
  const hash = createHash('sha256');
  const { body } = await store.getStream(key);
  for await (const chunk of body) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

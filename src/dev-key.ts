// Zero-config convenience: a "dev" tenant whose key is remembered under DATA_DIR, so every
// `npm start` can print a key that works. Only the hash is in the database, as for any key.
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { DB } from './db/schema.ts';
import { createApiKey, ensureTenant, findTenantByApiKey } from './tenants/tenants.repository.ts';

export async function ensureDevKey(db: Kysely<DB>, dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'dev-api-key');
  const remembered = (await readFile(file, 'utf8').catch(() => '')).trim();
  if (remembered && (await findTenantByApiKey(db, remembered))) return remembered;
  const tenant = await ensureTenant(db, 'dev');
  const key = await createApiKey(db, tenant.id);
  await mkdir(dataDir, { recursive: true });
  await writeFile(file, key + '\n', { mode: 0o600 });
  await chmod(file, 0o600);
  return key;
}

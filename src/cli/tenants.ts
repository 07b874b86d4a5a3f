// `stream-api tenants …`: the webhook signing secret of a tenant, and rotating it.
import { parseArgs } from 'node:util';
import { findWebhookSecret, rotateWebhookSecret } from '../notify/secrets.repository.ts';
import type { DatabaseRuntime } from '../runtime.ts';

export const TENANTS_USAGE = `  tenants secret --tenant NAME               print the tenant's webhook signing secret (only the secret)
  tenants rotate-secret --tenant NAME        new secret; the old one keeps signing for 24 h; prints the new one
`;

type WithRuntime = (fn: (rt: DatabaseRuntime) => Promise<void>) => Promise<number>;

export async function tenantsCommand(args: string[], withRuntime: WithRuntime): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'secret' && sub !== 'rotate-secret') {
    process.stderr.write(`usage:\n${TENANTS_USAGE}`);
    return 2;
  }
  const { values } = parseArgs({ args: rest, options: { tenant: { type: 'string' } } });
  const name = values.tenant;
  if (!name) {
    process.stderr.write('--tenant NAME is required\n');
    return 2;
  }
  let found = false;
  const code = await withRuntime(async (rt) => {
    const secret =
      sub === 'secret' ? await findWebhookSecret(rt.db, { name }) : await rotateWebhookSecret(rt.db, { name });
    if (!secret) return;
    found = true;
    // stdout carries only the secret, so `$(stream-api tenants secret --tenant x)` works.
    process.stdout.write(secret.webhookSecret + '\n');
    if (secret.previousSecretExpiresAt && sub === 'rotate-secret') {
      process.stderr.write(`the previous secret keeps signing until ${secret.previousSecretExpiresAt.toISOString()}\n`);
    }
  });
  if (code === 0 && !found) {
    process.stderr.write(`tenant "${name}" not found\n`);
    return 1;
  }
  return code;
}

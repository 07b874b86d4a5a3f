// `stream-api keys revoke KEY`: the operator's way to end a key (a leaked one, a departed client).
import type { DatabaseRuntime } from '../runtime.ts';

type WithRuntime = (fn: (rt: DatabaseRuntime) => Promise<void>) => Promise<number>;

/** Exit code 0 when revoked, 1 when no unrevoked key matches; the result goes to stderr (stdout stays empty). */
export async function revokeKeyCommand(key: string, withRuntime: WithRuntime): Promise<number> {
  let revoked: { prefix: string; tenant: string } | undefined;
  const code = await withRuntime(async (rt) => {
    const { revokeApiKey } = await import('../tenants/tenants.repository.ts');
    revoked = await revokeApiKey(rt.db, key);
  });
  if (code !== 0) return code;
  if (!revoked) {
    process.stderr.write('no unrevoked API key matches\n');
    return 1;
  }
  process.stderr.write(`revoked ${revoked.prefix}… of tenant ${revoked.tenant}\n`);
  return 0;
}

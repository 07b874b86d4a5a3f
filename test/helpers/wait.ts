// Polling for a condition that becomes true by itself (a process, a database row): the one place tests
// wait, so a timeout always says what was awaited.

/** Resolves once `check()` is true; polls every `intervalMs`; throws after `timeoutMs` naming `what`. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 10_000, what = 'a condition', intervalMs = 50): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

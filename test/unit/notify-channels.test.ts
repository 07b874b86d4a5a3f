// Channel adapters and the per-attempt decision, with no I/O: requests are built and verified in
// memory; the attempt runs against a fake deliverer and a fake query function.
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { attemptDelivery, type AttemptDeps } from '../../src/notify/attempt.ts';
import { channels } from '../../src/notify/channels/index.ts';
import type { ClaimedDelivery } from '../../src/notify/outbox.repository.ts';
import { generateSecret } from '../../src/notify/sign.ts';
import type { AttemptResult } from '../../src/notify/types.ts';

const NOW_MS = 1_700_000_000_000;
const payload = { type: 'upload.failed', uploadId: 'u-1', status: 'failed', rowsProcessed: 0, rowsFailed: 7, error: 'too many bad rows', timestamp: '2023-11-14T22:13:20.000Z' };

function claimed(overrides: Partial<ClaimedDelivery> = {}): ClaimedDelivery {
  return {
    id: '6f1c1b1e-8a4d-4a57-9a8f-1f2e3d4c5b6a', tenant_id: 't-1', channel: 'webhook', target: 'https://example.com/hook',
    payload, attempt: 1, run_first_attempt: 1, manual: false, lease_token: 'lease-1', secrets: [generateSecret()],
    interrupted_attempt: null, budget_spent: false, endpoint_id: null, probe: false,
    ...overrides,
  };
}

describe('webhook channel', () => {
  it('builds a Standard Webhooks request the reference verifier accepts', () => {
    const d = claimed();
    const req = channels.webhook!.build(d, NOW_MS / 1000);
    expect(req.url).toBe(d.target);
    expect(req.body).toBe(JSON.stringify(payload));
    expect(req.headers).toMatchObject({ 'webhook-id': d.id, 'webhook-timestamp': String(NOW_MS / 1000), 'content-type': 'application/json' });
    const verifier = new Webhook(d.secrets[0]!);
    // The verifier checks the timestamp against its clock; judge it at the signing time.
    const realNow = Date.now;
    Date.now = () => NOW_MS;
    try {
      expect(verifier.verify(req.body, req.headers)).toEqual(payload);
    } finally {
      Date.now = realNow;
    }
  });

  it('during rotation every secret signs, new first', () => {
    const [fresh, previous] = [generateSecret(), generateSecret()];
    const req = channels.webhook!.build(claimed({ secrets: [fresh, previous] }), NOW_MS / 1000);
    const signatures = req.headers['webhook-signature']!.split(' ');
    expect(signatures).toHaveLength(2);
    const realNow = Date.now;
    Date.now = () => NOW_MS;
    try {
      expect(() => new Webhook(fresh).verify(req.body, req.headers)).not.toThrow();
      expect(() => new Webhook(previous).verify(req.body, req.headers)).not.toThrow();
      expect(() => new Webhook(generateSecret()).verify(req.body, req.headers)).toThrow();
    } finally {
      Date.now = realNow;
    }
  });
});

describe('slack channel', () => {
  it('sends { text } with the outcome, no signature', () => {
    const req = channels.slack!.build(claimed({ channel: 'slack' }), NOW_MS / 1000);
    const body = JSON.parse(req.body);
    expect(Object.keys(body)).toEqual(['text']);
    expect(body.text).toBe(':x: upload u-1 failed: 0 rows loaded, 7 rejected — too many bad rows');
    expect(req.headers['webhook-signature']).toBeUndefined();
  });

  it('says what a dry run found and what a removal took back', () => {
    const text = (p: Record<string, unknown>) => JSON.parse(channels.slack!.build(claimed({ channel: 'slack', payload: p }), NOW_MS / 1000).body).text;
    expect(text({ type: 'upload.completed', uploadId: 'u-2', status: 'completed', rowsProcessed: 9, rowsFailed: 1, dryRun: true }))
      .toBe(':white_check_mark: upload u-2 completed: dry run, 9 rows valid (none loaded), 1 rejected');
    expect(text({ type: 'upload.rows_removed', uploadId: 'u-3', dataset: 'orders', rowsRemoved: 40 })).toBe(':wastebasket: upload u-3: 40 rows removed from orders');
  });

  it('has no adapter for `none`: such rows are written skipped and never claimed', () => {
    expect(Object.keys(channels).sort()).toEqual(['slack', 'webhook']);
  });
});

describe('attemptDelivery', () => {
  const okResult: AttemptResult = { ok: true, statusCode: 200, errorCode: null, errorMessage: null, responseExcerpt: 'ok', durationMs: 4 };
  const serverError: AttemptResult = { ok: false, statusCode: 500, errorCode: 'http_5xx', errorMessage: 'HTTP 500', responseExcerpt: null, durationMs: 4 };

  function deps(result: AttemptResult, overrides: Partial<AttemptDeps> = {}) {
    const queries: unknown[][] = [];
    const sent: string[] = [];
    const d: AttemptDeps = {
      pool: { query: async (_sql: string, params: unknown[]) => (queries.push(params), { rowCount: 1 }) } as never,
      deliverer: { deliver: async (url) => (sent.push(url), result), close: async () => {} },
      channels,
      retry: { maxRetries: 3, baseMs: 100, maxMs: 1000 },
      breaker: { threshold: 5, probeBaseMs: 100, probeMaxMs: 1000, disableAfterMs: 3_600_000 },
      now: () => NOW_MS,
      random: () => 1,
      ...overrides,
    };
    return { d, queries, sent };
  }

  it('finishes the attempt the claim started, under the claim’s lease token, with the outcome', async () => {
    const { d, queries, sent } = deps(okResult);
    const report = await attemptDelivery(d, claimed({ attempt: 3, run_first_attempt: 1 }));
    expect(report).toMatchObject({ number: 3, outcome: { status: 'sent' }, recorded: true });
    expect(sent).toEqual(['https://example.com/hook']);
    expect(queries[0]!.slice(0, 4)).toEqual(['6f1c1b1e-8a4d-4a57-9a8f-1f2e3d4c5b6a', 'lease-1', 'sent', 3]);
  });

  it('the retry budget counts from the start of the run: attempt 5 of a redelivery run is its 4th', async () => {
    const redeliveryRun = claimed({ attempt: 5, run_first_attempt: 2 }); // attempt 5 = 4th of the run
    expect((await attemptDelivery(deps(serverError).d, redeliveryRun)).outcome.status).toBe('failed');
    const earlier = claimed({ attempt: 4, run_first_attempt: 2 }); // attempt 4 = 3rd of the run
    expect((await attemptDelivery(deps(serverError).d, earlier)).outcome).toEqual({ status: 'pending', nextAttemptAt: new Date(NOW_MS + 400) });
  });

  it('a request that cannot be built is a recorded, final build_failed attempt; nothing is sent', async () => {
    const { d, sent } = deps(okResult);
    const report = await attemptDelivery(d, claimed({ secrets: ['not-a-secret'] }));
    expect(report.result).toMatchObject({ ok: false, errorCode: 'build_failed', statusCode: null });
    expect(report.outcome).toEqual({ status: 'failed' });
    expect(sent).toEqual([]);
    const unknown = await attemptDelivery(d, claimed({ channel: 'carrier-pigeon' }));
    expect(unknown.result.errorMessage).toContain('no adapter');
  });

  it('a lost lease is reported, not thrown', async () => {
    const { d } = deps(okResult, { pool: { query: async () => ({ rowCount: 0 }) } as never });
    expect((await attemptDelivery(d, claimed())).recorded).toBe(false);
  });
});

// The email channel against a real SMTP server in-process (smtp-server), a real dispatcher and
// Postgres: the mail arrives with the subject naming the event and upload and a body of its figures;
// an SMTP 5xx reply fails the delivery at once, a 4xx one is retried; email endpoints are refused
// without SMTP and need a mailto: url.
import { createServer, type AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEmailChannel } from '../../src/notify/channels/email.ts';
import { createEndpoint, deliveriesOf, runDispatcher } from '../helpers/endpoints.ts';
import { createTestEnv, startApi, useApi } from '../helpers/env.ts';
import { sendJson } from '../helpers/http.ts';
import { finishUpload } from '../helpers/outbox.ts';
import { waitFor } from '../helpers/wait.ts';

interface Mail {
  from: string;
  to: string[];
  headers: Map<string, string>;
  text: string;
}

/** Headers unfolded (RFC 5322 §2.2.3), the body decoded when quoted-printable. */
function parseMail(raw: string, session: SMTPServerSession): Mail {
  const split = raw.indexOf('\r\n\r\n');
  const headers = new Map<string, string>();
  for (const line of raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  let text = raw.slice(split + 4);
  if (/quoted-printable/i.test(headers.get('content-transfer-encoding') ?? '')) {
    text = Buffer.from(text.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
  }
  const envelope = session.envelope;
  return { from: envelope.mailFrom ? envelope.mailFrom.address : '', to: envelope.rcptTo.map((r) => r.address), headers, text: text.replace(/\r\n/g, '\n') };
}

/** What the SMTP server answers to RCPT TO: accept, or refuse with this reply code. */
let refuse: (address: string) => number | null = () => null;
const mails: Mail[] = [];
const rcptAttempts: string[] = [];
const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS'],
  logger: false,
  onRcptTo(address, _session, callback) {
    rcptAttempts.push(address.address);
    const code = refuse(address.address);
    if (code === null) return callback();
    callback(Object.assign(new Error(`refused by the test server (${code})`), { responseCode: code }));
  },
  onData(stream, session, callback) {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      mails.push(parseMail(Buffer.concat(chunks).toString('utf8'), session));
      callback();
    });
  },
});

const overrides: Record<string, string> = {
  WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8',
  WEBHOOK_MAX_RETRIES: '2',
  WEBHOOK_BACKOFF_BASE_MS: '50',
  WEBHOOK_BACKOFF_MAX_MS: '100',
  WEBHOOK_TIMEOUT_MS: '3000',
  ENDPOINT_BREAKER_THRESHOLD: '1000',
  SMTP_FROM: 'Stream API <notify@stream-api.test>',
  PUBLIC_URL: 'https://api.example.test',
};
// Before useApi's hook (hooks run in order): the server's port goes into the environment it builds.
beforeAll(async () => {
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  overrides.SMTP_URL = `smtp://127.0.0.1:${(smtp.server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => smtp.close(resolve)));
const ctx = useApi(overrides);
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  refuse = () => null;
});

describe('email channel', () => {
  it('sends a mail with the subject naming the event and upload, and the figures and status URL in its body', async () => {
    const { tenantId, key } = await ctx.t.newTenantKey();
    const endpoint = await createEndpoint(ctx.api, key, { url: 'mailto:ops@example.com', channel: 'email', eventTypes: ['upload.completed'] });
    expect(endpoint).toMatchObject({ channel: 'email', url: 'mailto:ops@example.com' });
    cleanups.push(await runDispatcher(ctx.t));
    const { uploadId } = await finishUpload(ctx.t.pool, { tenantId, callbackUrl: null, rowsProcessed: 10, rowsFailed: 2 });

    await waitFor(async () => mails.some((m) => m.text.includes(uploadId)), 15_000, 'the mail to arrive');
    const mail = mails.find((m) => m.text.includes(uploadId))!;
    expect(mail.to).toEqual(['ops@example.com']);
    expect(mail.from).toBe('notify@stream-api.test');
    expect(mail.headers.get('subject')).toBe('Upload test.csv completed: 10 rows');
    expect(mail.text).toContain('Event: upload.completed');
    expect(mail.text).toContain(`Upload: test.csv (${uploadId})`);
    expect(mail.text).toContain('Rows: 10 rows loaded, 2 rejected');
    expect(mail.text).toContain(`Status: https://api.example.test/uploads/${uploadId}`);

    await waitFor(async () => (await deliveriesOf(ctx.t.pool, endpoint.id))[0]?.delivery_status === 'sent', 10_000, 'the delivery to be sent');
    const [delivery] = await deliveriesOf(ctx.t.pool, endpoint.id);
    expect(mail.headers.get('message-id')).toBe(`<${delivery!.id}@stream-api>`);
    const { rows } = await ctx.t.pool.query(`SELECT response_status, error_code FROM delivery_attempts WHERE delivery_id = $1`, [delivery!.id]);
    expect(rows).toEqual([{ response_status: 250, error_code: null }]);
  });

  it('an SMTP 5xx reply fails the delivery at once; a 4xx reply is retried until accepted', async () => {
    const { tenantId, key } = await ctx.t.newTenantKey();
    refuse = (address) => (address === 'gone@example.com' ? 550 : null);
    let busy = 1; // the first RCPT TO for busy@ is answered 451, then it is accepted
    const previous = refuse;
    refuse = (address) => (address === 'busy@example.com' && busy-- > 0 ? 451 : previous(address));
    const gone = await createEndpoint(ctx.api, key, { url: 'mailto:gone@example.com', channel: 'email', eventTypes: ['upload.completed'] });
    const busyEndpoint = await createEndpoint(ctx.api, key, { url: 'mailto:busy@example.com', channel: 'email', eventTypes: ['upload.completed'] });
    cleanups.push(await runDispatcher(ctx.t));
    const { uploadId } = await finishUpload(ctx.t.pool, { tenantId, callbackUrl: null });

    await waitFor(async () => (await deliveriesOf(ctx.t.pool, gone.id))[0]?.delivery_status === 'failed', 15_000, 'the 5xx delivery to fail');
    await waitFor(async () => (await deliveriesOf(ctx.t.pool, busyEndpoint.id))[0]?.delivery_status === 'sent', 15_000, 'the 4xx delivery to be sent');
    const [failed] = await deliveriesOf(ctx.t.pool, gone.id);
    expect(failed).toMatchObject({ attempts: 1 }); // permanent: no retry, though two were allowed
    const attemptsOf = async (id: string) =>
      (await ctx.t.pool.query(`SELECT response_status, error_code FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt`, [id])).rows;
    expect(await attemptsOf(failed!.id)).toEqual([{ response_status: 550, error_code: 'smtp_5xx' }]);
    const [sent] = await deliveriesOf(ctx.t.pool, busyEndpoint.id);
    expect(await attemptsOf(sent!.id)).toEqual([{ response_status: 451, error_code: 'smtp_4xx' }, { response_status: 250, error_code: null }]);
    expect(rcptAttempts.filter((a) => a === 'gone@example.com')).toHaveLength(1);
    expect(mails.filter((m) => m.text.includes(uploadId)).map((m) => m.to)).toEqual([['busy@example.com']]);
  });

  it('a refused connection is connect_refused (retried), not an SMTP reply', async () => {
    const closed = createServer(); // a port nothing listens on any more
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const channel = createEmailChannel({ smtp: { url: `smtp://127.0.0.1:${port}`, from: 'a@example.com' }, timeoutMs: 2000, pool: ctx.t.pool, publicUrl: null });
    const result = await channel.send({ id: 'd1', tenant_id: (await ctx.t.newTenantKey()).tenantId, target: 'mailto:ops@example.com', payload: { type: 'upload.completed', uploadId: '00000000-0000-4000-8000-000000000000' }, secrets: [] });
    await channel.close();
    expect(result).toMatchObject({ ok: false, statusCode: null, errorCode: 'connect_refused' });
  });

  it('needs a mailto: url with one address; a channel change is judged with the url kept', async () => {
    const { key } = await ctx.t.newTenantKey();
    const post = (body: Record<string, unknown>) => sendJson(ctx.api.url, key, 'POST', '/endpoints', body);
    for (const url of ['https://example.com/hook', 'mailto:a@example.com,b@example.com', 'mailto:a@example.com?subject=x', 'mailto:nobody', 'mailto:a@localhost']) {
      const res = await post({ url, channel: 'email' });
      expect(res.status, url).toBe(400);
      expect((res.body as { error: { code: string } }).error.code, url).toBe('invalid_endpoint_url');
    }
    const mailtoAsWebhook = await post({ url: 'mailto:a@example.com' });
    expect((mailtoAsWebhook.body as { error: { code: string } }).error.code).toBe('invalid_endpoint_url');

    const webhook = await createEndpoint(ctx.api, key, { url: 'http://127.0.0.1:9/hook' });
    const toEmail = await sendJson(ctx.api.url, key, 'PATCH', `/endpoints/${webhook.id}`, { channel: 'email' });
    expect(toEmail.status).toBe(400);
    expect((toEmail.body as { error: { code: string } }).error.code).toBe('invalid_endpoint_url');
    const both = await sendJson(ctx.api.url, key, 'PATCH', `/endpoints/${webhook.id}`, { channel: 'email', url: 'mailto:Ops@Example.com' });
    expect(both.status).toBe(200);
    expect(both.body).toMatchObject({ channel: 'email', url: 'mailto:Ops@Example.com' });
  });

  it('is refused with 400 email_not_configured when SMTP_URL is not set', async () => {
    const t = await createTestEnv({});
    const api = await startApi(t);
    try {
      const { key } = await t.newTenantKey();
      const res = await sendJson(api.url, key, 'POST', '/endpoints', { url: 'mailto:ops@example.com', channel: 'email' });
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: { code: 'email_not_configured', message: 'email endpoints need SMTP: this service has no SMTP_URL set' } });
    } finally {
      await api.close();
      await t.close();
    }
  });
});

// The email channel: a notification as a plain-text mail, sent through the configured SMTP server
// with nodemailer. The endpoint's url is `mailto:someone@example.com` (RFC 6068, one address).
// An attempt succeeds when the server accepts the message (2xx after DATA); an SMTP 4xx reply is
// transient and retried, a 5xx reply is permanent (RFC 5321 §4.2.1; retry-policy.ts).
import { performance } from 'node:perf_hooks';
import nodemailer from 'nodemailer';
import type pg from 'pg';
import type { AttemptErrorCode } from '../types.ts';
import type { DeliveryForChannel, SendingChannel } from './types.ts';

/** `mailto:` and one plain address (no second recipient, no ?subject= or other header fields). */
const MAILTO = /^mailto:([^\s@,;:<>()[\]\\"?%]{1,64}@[^\s@,;:<>()[\]\\"?%]{1,255})$/i;

/** The address of a `mailto:` url, or null when it is not one address (what endpoints accept). */
export function mailtoAddress(url: string): string | null {
  const match = MAILTO.exec(url.trim());
  const domain = match?.[1]?.split('@')[1];
  if (!match || !domain || !/^[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(domain)) return null;
  return match[1]!;
}

export interface EmailChannelOptions {
  smtp: { url: string; from: string };
  /** the whole SMTP transaction's budget, as WEBHOOK_TIMEOUT_MS is an HTTP attempt's */
  timeoutMs: number;
  /** reads the upload's filename for the subject */
  pool: Pick<pg.Pool, 'query'>;
  /** PUBLIC_URL: the status URL in the mail is absolute when set, a path otherwise */
  publicUrl: string | null;
}

interface Payload {
  type?: string;
  uploadId?: string;
  status?: string;
  attempt?: number;
  rowsProcessed?: number;
  rowsFailed?: number;
  rowsRemoved?: number;
  dryRun?: boolean;
  error?: string;
  errorCode?: string;
  endpointId?: string;
  url?: string;
  reason?: string;
  timestamp?: string;
}

/** The mail for a delivery: subject naming the event and upload, a text body of its key figures. */
export function composeMail(payload: Payload, filename: string | null, statusUrl: string | null): { subject: string; text: string } {
  const name = filename ?? payload.uploadId ?? 'unknown';
  const rows = `${payload.rowsProcessed ?? 0} rows ${payload.dryRun ? 'valid (dry run: none loaded)' : 'loaded'}, ${payload.rowsFailed ?? 0} rejected`;
  let subject: string;
  switch (payload.type) {
    case 'upload.completed':
      subject = `Upload ${name} completed: ${payload.rowsProcessed ?? 0} rows`;
      break;
    case 'upload.failed':
      subject = `Upload ${name} failed: ${payload.errorCode ?? 'error'}`;
      break;
    case 'upload.processing':
      subject = `Upload ${name} processing (attempt ${payload.attempt ?? 1})`;
      break;
    case 'upload.rows_removed':
      subject = `Upload ${name}: ${payload.rowsRemoved ?? 0} rows removed`;
      break;
    case 'endpoint.disabled':
      subject = `Endpoint ${payload.url ?? payload.endpointId} disabled`;
      break;
    default:
      subject = `stream-api: ${payload.type ?? 'notification'}`;
  }
  const lines = [`Event: ${payload.type ?? 'unknown'}`];
  if (payload.uploadId) lines.push(`Upload: ${name} (${payload.uploadId})`);
  if (payload.status) lines.push(`Status: ${payload.status}`);
  if (payload.type === 'upload.completed' || payload.type === 'upload.failed') lines.push(`Rows: ${rows}`);
  if (payload.type === 'upload.processing') lines.push(`Attempt: ${payload.attempt ?? 1}`);
  if (payload.type === 'upload.rows_removed') lines.push(`Rows removed: ${payload.rowsRemoved ?? 0}`);
  if (payload.error) lines.push(`Error: ${payload.error}${payload.errorCode ? ` (${payload.errorCode})` : ''}`);
  if (payload.type === 'endpoint.disabled') {
    lines.push(`Endpoint: ${payload.endpointId} (${payload.url})`, `Reason: ${payload.reason ?? ''}`);
  }
  if (payload.timestamp) lines.push(`At: ${payload.timestamp}`);
  if (statusUrl) lines.push('', `Status: ${statusUrl}`);
  return { subject, text: `${lines.join('\n')}\n` };
}

/** The code nodemailer reports and the codes it wraps (a socket error's own code is in the message). */
function classify(err: unknown): { code: AttemptErrorCode; status: number | null; message: string; response: string | null } {
  const e = (err ?? {}) as { code?: unknown; responseCode?: unknown; response?: unknown; message?: unknown };
  const message = (typeof e.message === 'string' ? e.message : String(err)).slice(0, 500);
  const response = typeof e.response === 'string' ? e.response.slice(0, 2048) : null;
  const status = typeof e.responseCode === 'number' ? e.responseCode : null;
  if (status !== null && status >= 400 && status <= 499) return { code: 'smtp_4xx', status, message, response };
  if (status !== null && status >= 500 && status <= 599) return { code: 'smtp_5xx', status, message, response };
  const code = typeof e.code === 'string' ? e.code : '';
  if (code === 'ETIMEDOUT' || /timeout/i.test(message)) return { code: 'timeout', status, message, response };
  if (/ECONNREFUSED/.test(message)) return { code: 'connect_refused', status, message, response };
  if (code === 'EDNS' || /ENOTFOUND|EAI_AGAIN/.test(message)) return { code: 'dns', status, message, response };
  if (code === 'ETLS' || /certificate|SSL|TLS/i.test(message)) return { code: 'tls', status, message, response };
  if (/ECONNRESET|EPIPE/.test(message)) return { code: 'reset', status, message, response };
  return { code: 'network', status, message, response };
}

/**
 * A channel that sends each delivery as one mail over SMTP (a connection per attempt: no pool to
 * go stale between rare notifications). Never throws for the server's or the network's failures:
 * they are the attempt's result. `close` releases the transport.
 */
export function createEmailChannel(opts: EmailChannelOptions): SendingChannel {
  const transport = nodemailer.createTransport(
    { url: opts.smtp.url, connectionTimeout: opts.timeoutMs, greetingTimeout: opts.timeoutMs, socketTimeout: opts.timeoutMs },
    { from: opts.smtp.from },
  );
  const base = opts.publicUrl?.replace(/\/+$/, '') ?? '';

  async function filenameOf(delivery: DeliveryForChannel, uploadId: string | undefined): Promise<string | null> {
    if (!uploadId) return null;
    const { rows } = await opts.pool.query<{ filename: string }>(
      'SELECT filename FROM uploads WHERE id = $1 AND tenant_id = $2',
      [uploadId, delivery.tenant_id],
    );
    return rows[0]?.filename ?? null; // purged: the subject names its id
  }

  return {
    async send(delivery) {
      const started = performance.now();
      const elapsed = () => Math.round(performance.now() - started);
      const to = mailtoAddress(delivery.target);
      if (to === null) {
        return { ok: false, statusCode: null, errorCode: 'build_failed', errorMessage: `not a mailto: address: ${delivery.target.slice(0, 200)}`, responseExcerpt: null, durationMs: 0 };
      }
      const payload = delivery.payload as Payload;
      const statusUrl = payload.uploadId ? `${base}/uploads/${payload.uploadId}` : null;
      const { subject, text } = composeMail(payload, await filenameOf(delivery, payload.uploadId), statusUrl);
      try {
        const info = await transport.sendMail({
          to,
          subject,
          text,
          // One Message-ID per delivery, the same on every retry: a mail system can drop a duplicate.
          messageId: `<${delivery.id}@stream-api>`,
          headers: { 'X-Stream-Api-Delivery': delivery.id, ...(payload.type ? { 'X-Stream-Api-Event': payload.type } : {}) },
        });
        const reply = typeof info.response === 'string' ? info.response : '';
        const code = Number(/^(\d{3})/.exec(reply)?.[1] ?? 250);
        return { ok: true, statusCode: code, errorCode: null, errorMessage: null, responseExcerpt: reply.slice(0, 2048) || null, durationMs: elapsed() };
      } catch (err) {
        const failure = classify(err);
        return { ok: false, statusCode: failure.status, errorCode: failure.code, errorMessage: failure.message, responseExcerpt: failure.response, durationMs: elapsed() };
      }
    },
    async close() {
      transport.close();
    },
  };
}

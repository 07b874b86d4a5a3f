// Standard Webhooks signing, symmetric `v1` scheme (https://www.standardwebhooks.com/).
// Receivers verify with any Standard Webhooks library, e.g. the `standardwebhooks` npm package.
import { createHmac, randomBytes } from 'node:crypto';

const SECRET_PREFIX = 'whsec_';
const MIN_KEY_BYTES = 24;
const MAX_KEY_BYTES = 64;
const GENERATED_KEY_BYTES = 32;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export interface WebhookHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
  'content-type': 'application/json';
  [name: string]: string;
}

/** A fresh signing secret: `whsec_` + base64 of 32 random bytes. */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(GENERATED_KEY_BYTES).toString('base64');
}

/**
 * Decodes the HMAC key. Strict on purpose: a secret that is mistyped or truncated would otherwise
 * silently produce signatures no receiver can verify.
 */
function secretKey(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) {
    throw new Error(`webhook secret must start with "${SECRET_PREFIX}"`);
  }
  const encoded = secret.slice(SECRET_PREFIX.length);
  if (!BASE64.test(encoded)) throw new Error('webhook secret is not valid base64');
  const key = Buffer.from(encoded, 'base64');
  if (key.length < MIN_KEY_BYTES || key.length > MAX_KEY_BYTES) {
    throw new Error(`webhook secret must decode to ${MIN_KEY_BYTES}–${MAX_KEY_BYTES} bytes, got ${key.length}`);
  }
  return key;
}

function assertSignable(msgId: string, timestampSec: number): void {
  // Receivers split the signed content on '.', so an id containing one would be ambiguous.
  if (msgId.length === 0 || msgId.includes('.')) {
    throw new Error('webhook id must be non-empty and must not contain "."');
  }
  if (!Number.isSafeInteger(timestampSec) || timestampSec < 0) {
    throw new Error('webhook timestamp must be a non-negative integer number of seconds');
  }
}

/** `v1,<base64 HMAC-SHA256(key, "{id}.{ts}.{body}")>` — body must be the exact bytes sent. */
export function signPayload(secret: string, msgId: string, timestampSec: number, body: string): string {
  assertSignable(msgId, timestampSec);
  const mac = createHmac('sha256', secretKey(secret))
    .update(`${msgId}.${timestampSec}.${body}`, 'utf8')
    .digest('base64');
  return `v1,${mac}`;
}

/** Space-separated signatures, one per secret, in the given order (during rotation: new first, then previous). */
export function signatureHeader(
  secrets: readonly string[],
  msgId: string,
  timestampSec: number,
  body: string,
): string {
  if (secrets.length === 0) throw new Error('at least one webhook secret is required');
  return secrets.map((secret) => signPayload(secret, msgId, timestampSec, body)).join(' ');
}

/**
 * Headers for one attempt. Call it again for every retry: the timestamp is the attempt's own time,
 * so a retry hours later still falls inside the receiver's 5-minute tolerance.
 */
export function webhookHeaders(
  secrets: readonly string[],
  msgId: string,
  body: string,
  nowSec: number,
): WebhookHeaders {
  const timestampSec = Math.floor(nowSec);
  return {
    'webhook-id': msgId,
    'webhook-timestamp': String(timestampSec),
    'webhook-signature': signatureHeader(secrets, msgId, timestampSec, body),
    'content-type': 'application/json',
  };
}

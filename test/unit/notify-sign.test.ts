import { describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { generateSecret, signatureHeader, signPayload, webhookHeaders } from '../../src/notify/sign.ts';

// Test vector from the Standard Webhooks reference libraries (WEBHOOKS.md).
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const MSG_ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const TIMESTAMP = 1614265330;
const BODY = '{"test": 2432232314}';
const EXPECTED = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';

const nowSec = () => Math.floor(Date.now() / 1000);

describe('signPayload', () => {
  it('matches the Standard Webhooks test vector', () => {
    expect(signPayload(SECRET, MSG_ID, TIMESTAMP, BODY)).toBe(EXPECTED);
  });

  it('signs the exact body bytes: any change in body, id or timestamp changes the signature', () => {
    expect(signPayload(SECRET, MSG_ID, TIMESTAMP, '{"test":2432232314}')).not.toBe(EXPECTED);
    expect(signPayload(SECRET, 'msg_other', TIMESTAMP, BODY)).not.toBe(EXPECTED);
    expect(signPayload(SECRET, MSG_ID, TIMESTAMP + 1, BODY)).not.toBe(EXPECTED);
  });

  it('signs non-ASCII bodies as UTF-8 (verified by the reference library)', () => {
    const body = JSON.stringify({ name: 'Zoë — 数据', emoji: '🚀' });
    const ts = nowSec();
    const headers = webhookHeaders([SECRET], 'msg_utf8', body, ts);
    expect(() => new Webhook(SECRET).verify(body, headers)).not.toThrow();
  });

  it('refuses malformed secrets, ids and timestamps', () => {
    expect(() => signPayload('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', MSG_ID, TIMESTAMP, BODY)).toThrow(/whsec_/);
    expect(() => signPayload('whsec_not*base64!', MSG_ID, TIMESTAMP, BODY)).toThrow(/base64/);
    expect(() => signPayload('whsec_c2hvcnQ=', MSG_ID, TIMESTAMP, BODY)).toThrow(/24–64 bytes/);
    expect(() => signPayload(SECRET, 'msg.with.dots', TIMESTAMP, BODY)).toThrow(/must not contain/);
    expect(() => signPayload(SECRET, '', TIMESTAMP, BODY)).toThrow(/non-empty/);
    expect(() => signPayload(SECRET, MSG_ID, 1.5, BODY)).toThrow(/integer/);
    expect(() => signPayload(SECRET, MSG_ID, -1, BODY)).toThrow(/integer/);
  });
});

describe('generateSecret', () => {
  it('returns whsec_ + base64 of 32 random bytes, different every time', () => {
    const a = generateSecret();
    const b = generateSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(a.slice('whsec_'.length), 'base64')).toHaveLength(32);
    expect(a).not.toBe(b);
  });

  it('produces secrets the reference library accepts', () => {
    const secret = generateSecret();
    const headers = webhookHeaders([secret], 'msg_1', '{"a":1}', nowSec());
    expect(new Webhook(secret).verify('{"a":1}', headers)).toEqual({ a: 1 });
  });
});

describe('signatureHeader', () => {
  it('joins one signature per secret with spaces, in the given order', () => {
    const other = generateSecret();
    const header = signatureHeader([other, SECRET], MSG_ID, TIMESTAMP, BODY);
    const parts = header.split(' ');
    expect(parts).toHaveLength(2);
    expect(parts[0]).toBe(signPayload(other, MSG_ID, TIMESTAMP, BODY));
    expect(parts[1]).toBe(EXPECTED);
  });

  it('requires at least one secret', () => {
    expect(() => signatureHeader([], MSG_ID, TIMESTAMP, BODY)).toThrow(/at least one/);
  });
});

describe('webhookHeaders', () => {
  it('builds the four headers, flooring a fractional timestamp', () => {
    const headers = webhookHeaders([SECRET], MSG_ID, BODY, TIMESTAMP + 0.9);
    expect(headers).toEqual({
      'webhook-id': MSG_ID,
      'webhook-timestamp': String(TIMESTAMP),
      'webhook-signature': EXPECTED,
      'content-type': 'application/json',
    });
  });

  it('is verified by standardwebhooks', () => {
    const body = '{"type":"job.completed","data":{"id":"job_1"}}';
    const headers = webhookHeaders([SECRET], 'msg_verify', body, nowSec());
    expect(new Webhook(SECRET).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('during rotation, a two-secret header is verified by each secret alone', () => {
    const newSecret = generateSecret();
    const oldSecret = generateSecret();
    const body = '{"rotation":true}';
    const headers = webhookHeaders([newSecret, oldSecret], 'msg_rotate', body, nowSec());
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(() => new Webhook(newSecret).verify(body, headers)).not.toThrow();
    expect(() => new Webhook(oldSecret).verify(body, headers)).not.toThrow();
    expect(() => new Webhook(generateSecret()).verify(body, headers)).toThrow();
  });

  it('fails verification when the body is re-serialized or the timestamp is stale', () => {
    const body = '{"a": 1}';
    const fresh = webhookHeaders([SECRET], 'msg_x', body, nowSec());
    expect(() => new Webhook(SECRET).verify('{"a":1}', fresh)).toThrow();
    const stale = webhookHeaders([SECRET], 'msg_x', body, nowSec() - 10 * 60);
    expect(() => new Webhook(SECRET).verify(body, stale)).toThrow();
  });
});

// The rule that decides whether an open live stream may stay open, given what one batched check found.
import { describe, expect, it } from 'vitest';
import { accessLost, isAccessLost, type StreamAccess, type ValidGrants } from '../../src/live/access.ts';

const NOW = 1_000_000;
const hash = Buffer.alloc(32, 7);
const byKey: StreamAccess = { tenantId: 'tenant-a', apiKeyId: 'key-1', token: null };
const byToken: StreamAccess = { ...byKey, token: { hash, expiresAtMs: NOW + 1000 } };

function valid(over: Partial<{ keys: string[]; tokens: string[]; uploads: [string, string][] }> = {}): ValidGrants {
  return {
    apiKeyIds: new Set(over.keys ?? ['key-1']),
    tokenHashes: new Set(over.tokens ?? [hash.toString('hex')]),
    uploadTenants: new Map(over.uploads ?? [['upload-1', 'tenant-a']]),
  };
}

describe('accessLost', () => {
  it('keeps a stream whose key, token and upload are all still valid', () => {
    expect(accessLost(byKey, 'upload-1', valid(), NOW)).toBeNull();
    expect(accessLost(byToken, 'upload-1', valid(), NOW)).toBeNull();
    expect(accessLost(byToken, null, valid({ uploads: [] }), NOW)).toBeNull(); // a feed follows no upload
  });

  it('a revoked key ends its streams, token or not (and says so first)', () => {
    expect(accessLost(byKey, null, valid({ keys: [] }), NOW)).toBe('key_revoked');
    expect(accessLost(byToken, 'upload-1', valid({ keys: [], tokens: [] }), NOW + 5000)).toBe('key_revoked');
  });

  it('a token ends at its expiry by this clock, or when the database no longer holds it valid', () => {
    expect(accessLost(byToken, null, valid(), NOW + 999)).toBeNull();
    expect(accessLost(byToken, null, valid(), NOW + 1000)).toBe('token_expired');
    expect(accessLost(byToken, null, valid({ tokens: [] }), NOW)).toBe('token_expired');
    expect(accessLost(byKey, null, valid({ tokens: [] }), NOW)).toBeNull(); // no token, nothing to expire
  });

  it("an upload gone, or (never) another tenant's, ends the upload's streams", () => {
    expect(accessLost(byKey, 'upload-1', valid({ uploads: [] }), NOW)).toBe('not_found');
    expect(accessLost(byKey, 'upload-1', valid({ uploads: [['upload-1', 'tenant-b']] }), NOW)).toBe('not_found');
  });

  it('knows its own codes', () => {
    expect(['key_revoked', 'token_expired', 'not_found', 'done', 'toString'].map(isAccessLost)).toEqual([true, true, true, false, false]);
  });
});

// The edge's settings: where the API listens by default, its timeouts and per-tenant limits.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';

describe('config: the API edge', () => {
  it('listens on loopback unless HOST says otherwise (zero-config prints a dev key)', () => {
    expect(loadConfig({}).host).toBe('127.0.0.1');
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
  });

  it('has timeouts and per-tenant limits with generous defaults', () => {
    const config = loadConfig({});
    expect(config.http).toEqual({ bodyIdleTimeoutMs: 60_000, headersTimeoutMs: 30_000, keepAliveTimeoutMs: 72_000 });
    expect(config.limits).toEqual({ uploadsInFlight: 20, uploadsPerMinute: 300, tokensPerMinute: 120, liveStreams: 1000 });
  });

  it('reads each from its variable', () => {
    const config = loadConfig({
      BODY_IDLE_TIMEOUT_MS: '5000',
      HEADERS_TIMEOUT_MS: '2000',
      KEEP_ALIVE_TIMEOUT_MS: '3000',
      LIMIT_UPLOADS_IN_FLIGHT: '3',
      LIMIT_UPLOADS_PER_MINUTE: '30',
      LIMIT_TOKENS_PER_MINUTE: '12',
      LIMIT_LIVE_STREAMS: '50',
    });
    expect(config.http).toEqual({ bodyIdleTimeoutMs: 5000, headersTimeoutMs: 2000, keepAliveTimeoutMs: 3000 });
    expect(config.limits).toEqual({ uploadsInFlight: 3, uploadsPerMinute: 30, tokensPerMinute: 12, liveStreams: 50 });
  });

  it('refuses a bad value, naming every one', () => {
    let error: unknown;
    try {
      loadConfig({ BODY_IDLE_TIMEOUT_MS: 'soon', LIMIT_LIVE_STREAMS: '0', LIMIT_UPLOADS_IN_FLIGHT: '-1' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    for (const name of ['BODY_IDLE_TIMEOUT_MS', 'LIMIT_LIVE_STREAMS', 'LIMIT_UPLOADS_IN_FLIGHT']) {
      expect((error as Error).message).toContain(name);
    }
  });
});

describe('config: uploads into storage', () => {
  it('sends two 5 MiB parts at once by default, with 32 MiB shared by all uploads for the second', () => {
    expect(loadConfig({}).uploads).toEqual({ partSizeBytes: 5 * 2 ** 20, partsInFlight: 2, bufferBytes: 32 * 2 ** 20 });
    expect(loadConfig({ UPLOAD_PART_SIZE_MIB: '16', UPLOAD_PARTS_IN_FLIGHT: '4', UPLOAD_BUFFER_MIB: '0' }).uploads).toEqual({
      partSizeBytes: 16 * 2 ** 20,
      partsInFlight: 4,
      bufferBytes: 0,
    });
  });

  it('refuses parts under S3’s 5 MiB minimum, too small for MAX_UPLOAD_BYTES in 10,000 parts, or a budget that holds no part', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error(`accepted ${JSON.stringify(env)}`);
    };
    expect(problems({ UPLOAD_PART_SIZE_MIB: '4' })).toContain('UPLOAD_PART_SIZE_MIB');
    expect(problems({ UPLOAD_PARTS_IN_FLIGHT: '0' })).toContain('UPLOAD_PARTS_IN_FLIGHT');
    // 10,000 parts of 5 MiB are 48.8 GiB: a 60 GiB limit needs bigger parts, and is fine with them
    expect(problems({ MAX_UPLOAD_BYTES: String(60 * 2 ** 30) })).toMatch(/UPLOAD_PART_SIZE_MIB=5: 10,000 parts hold less than MAX_UPLOAD_BYTES/);
    expect(loadConfig({ MAX_UPLOAD_BYTES: String(60 * 2 ** 30), UPLOAD_PART_SIZE_MIB: '8' }).uploads.partSizeBytes).toBe(8 * 2 ** 20);
    expect(problems({ UPLOAD_PART_SIZE_MIB: '64' })).toContain('UPLOAD_BUFFER_MIB');
  });
});

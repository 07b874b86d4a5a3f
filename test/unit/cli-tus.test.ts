// The CLI's tus settings and resume fingerprint, with no service: what makes an upload resumable by a
// later run (the same file, unchanged, to the same service with the same key) and nothing else.
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TUS_THRESHOLD_BYTES, loadUploadSettings } from '../../src/cli/client/config.ts';
import { UsageError } from '../../src/cli/client/errors.ts';
import { tusFingerprint } from '../../src/cli/client/tus.ts';

describe('tusFingerprint', () => {
  const file = { path: 'data/big.csv', size: 1_000_000, mtimeMs: 1_700_000_000_123.4 };
  const base = tusFingerprint(file, 'http://localhost:3002', 'sk_one');

  it('is stable for the same file, service and key, and names neither path nor key', () => {
    expect(tusFingerprint({ ...file }, 'http://localhost:3002', 'sk_one')).toBe(base);
    expect(tusFingerprint({ ...file, path: path.resolve(file.path) }, 'http://localhost:3002', 'sk_one')).toBe(base);
    expect(base).toMatch(/^stream-api-[0-9a-f]{64}$/);
  });

  it('differs when the file, its size or mtime, the service or the key differ', () => {
    const others = [
      tusFingerprint({ ...file, path: 'data/big2.csv' }, 'http://localhost:3002', 'sk_one'),
      tusFingerprint({ ...file, size: file.size + 1 }, 'http://localhost:3002', 'sk_one'),
      tusFingerprint({ ...file, mtimeMs: file.mtimeMs + 1000 }, 'http://localhost:3002', 'sk_one'),
      tusFingerprint(file, 'http://localhost:3003', 'sk_one'),
      tusFingerprint(file, 'http://localhost:3002', 'sk_two'),
    ];
    expect(new Set([base, ...others]).size).toBe(6);
  });
});

describe('loadUploadSettings', () => {
  it('defaults: 64 MiB, the XDG config folder', () => {
    expect(loadUploadSettings({}, '/home/u')).toEqual({ tusThresholdBytes: DEFAULT_TUS_THRESHOLD_BYTES, stateDir: '/home/u/.config/stream-api' });
    expect(DEFAULT_TUS_THRESHOLD_BYTES).toBe(64 * 1024 * 1024);
    expect(loadUploadSettings({ XDG_CONFIG_HOME: '/cfg' }, '/home/u').stateDir).toBe('/cfg/stream-api');
  });

  it('STREAM_API_CONFIG_DIR and STREAM_API_TUS_THRESHOLD override; a bad threshold is a usage error', () => {
    const settings = loadUploadSettings({ STREAM_API_CONFIG_DIR: 'state', STREAM_API_TUS_THRESHOLD: '1000', XDG_CONFIG_HOME: '/cfg' }, os.homedir());
    expect(settings).toEqual({ tusThresholdBytes: 1000, stateDir: path.resolve('state') });
    for (const bad of ['64MiB', '-1', '1e9', '1.5']) {
      expect(() => loadUploadSettings({ STREAM_API_TUS_THRESHOLD: bad })).toThrow(UsageError);
    }
  });
});

// The config module parses every setting at start-up: a malformed value of any variable stops
// loadConfig with every problem listed, instead of surfacing at its first use (a request, a listen,
// the first S3 call).
import { describe, expect, it } from 'vitest';
import { CONFIG_ENV_NAMES, ConfigError, loadConfig } from '../../src/config.ts';
import { allowListOf } from '../../src/notify/ssrf.ts';

/** Settings whose every value is acceptable: secrets, a folder, and NODE_ENV (only "production" matters). */
const FREE_FORM = ['S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY', 'DATA_DIR', 'NODE_ENV'];

/** A value no setting with a grammar accepts: not a number, boolean, URL, address, level or name. */
const GARBAGE = 'not valid/%%';

function problemsOf(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig parses every setting', () => {
  const checked = CONFIG_ENV_NAMES.filter((name) => !FREE_FORM.includes(name));

  it.each(checked)('%s: a malformed value stops loadConfig, naming the variable', (name) => {
    expect(problemsOf({ [name]: GARBAGE })).toContain(name);
  });

  it('lists every malformed setting in one error', () => {
    const message = problemsOf(Object.fromEntries(checked.map((name) => [name, GARBAGE])));
    const missing = checked.filter((name) => !message.includes(name));
    expect(missing, message).toEqual([]);
  });

  it('a bad WEBHOOK_ALLOWED_CIDRS is listed with the other problems, naming the bad entry', () => {
    const message = problemsOf({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8,10.0.0.0/33', PORT: 'x', HOST: 'bad host', S3_REGION: 'us east' });
    expect(message).toMatch(/WEBHOOK_ALLOWED_CIDRS: invalid allow-list entry "10\.0\.0\.0\/33"/);
    for (const name of ['PORT', 'HOST', 'S3_REGION']) expect(message).toContain(name);
  });
});

describe('parsed values', () => {
  it('WEBHOOK_ALLOWED_CIDRS becomes the entries the SSRF guard takes', () => {
    const config = loadConfig({ WEBHOOK_ALLOWED_CIDRS: ' 127.0.0.0/8, ::1 ,,10.1.2.3' });
    expect(config.webhook.allowedCidrs).toEqual([
      { address: '127.0.0.0', prefix: 8, family: 'ipv4' },
      { address: '::1', prefix: 128, family: 'ipv6' },
      { address: '10.1.2.3', prefix: 32, family: 'ipv4' },
    ]);
    const list = allowListOf(config.webhook.allowedCidrs);
    expect(list.check('127.9.9.9', 'ipv4')).toBe(true);
    expect(list.check('10.1.2.4', 'ipv4')).toBe(false);
    expect(Object.isFrozen(config.webhook.allowedCidrs[0])).toBe(true);
    expect(loadConfig({}).webhook.allowedCidrs).toEqual([]);
  });

  it('HOST and METRICS_HOST take IP literals and host names', () => {
    for (const host of ['0.0.0.0', '127.0.0.1', '::', '::1', 'localhost', 'api-1.internal.example']) {
      expect(loadConfig({ HOST: host, METRICS_HOST: host })).toMatchObject({ host, metricsHost: host });
    }
    for (const host of ['bad host', 'http://x', '-x', 'a..b', '1.2.3.4:80']) {
      expect(problemsOf({ METRICS_HOST: host })).toContain('METRICS_HOST');
    }
  });

  it('the ops listener is on by default, on loopback port 9464', () => {
    expect(loadConfig({})).toMatchObject({ metricsPort: 9464, metricsHost: '127.0.0.1' });
    expect(loadConfig({ METRICS_PORT: '0', METRICS_HOST: '0.0.0.0' })).toMatchObject({ metricsPort: 0, metricsHost: '0.0.0.0' });
  });

  it('S3_REGION follows the AWS SDK rule (a host label)', () => {
    expect(loadConfig({ S3_REGION: 'eu-central-1' }).s3.region).toBe('eu-central-1');
    for (const region of ['us east', 'us.east', '-us', 'us-', 'a'.repeat(64)]) expect(problemsOf({ S3_REGION: region })).toContain('S3_REGION');
  });

  it('direct uploads: expiry within SigV4\'s week, parts within S3\'s 5 MiB–5 GiB, a public endpoint for the part URLs', () => {
    expect(loadConfig({})).toMatchObject({ directUploads: { expiryHours: 24, partSizeBytes: 16 * 1024 * 1024 }, s3: { publicEndpoint: null } });
    expect(loadConfig({ DIRECT_UPLOAD_EXPIRY_HOURS: '168', DIRECT_UPLOAD_PART_MIB: '5', S3_PUBLIC_ENDPOINT: 'https://s3.example.com' })).toMatchObject({
      directUploads: { expiryHours: 168, partSizeBytes: 5 * 1024 * 1024 },
      s3: { publicEndpoint: 'https://s3.example.com' },
    });
    expect(problemsOf({ DIRECT_UPLOAD_EXPIRY_HOURS: '169' })).toContain('DIRECT_UPLOAD_EXPIRY_HOURS');
    expect(problemsOf({ DIRECT_UPLOAD_PART_MIB: '4' })).toContain('DIRECT_UPLOAD_PART_MIB');
    expect(problemsOf({ DIRECT_UPLOAD_PART_MIB: '5121' })).toContain('DIRECT_UPLOAD_PART_MIB');
    expect(problemsOf({ S3_PUBLIC_ENDPOINT: 'ftp://x' })).toContain('S3_PUBLIC_ENDPOINT');
  });
});

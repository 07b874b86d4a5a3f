// The deployment files against the code: every variable docker-compose.yml (and the Dockerfile) sets
// on the app is one src/config.ts reads, and loadConfig accepts what compose passes.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CONFIG_ENV_NAMES, loadConfig } from '../../src/config.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const COMPOSE_FILE = `${ROOT}docker-compose.yml`;
const APP_SERVICES = ['api', 'worker', 'dispatcher'];

interface Service {
  build?: unknown;
  image?: string;
  command?: string[];
  container_name?: string;
  ports?: unknown[];
  environment?: Record<string, string | number | boolean | null> | string[];
  deploy?: { resources?: { limits?: { memory?: string } } };
}

// A clean environment, so ${VAR:-default} resolves to the file's defaults whatever the shell has.
const composeEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
const dockerCompose = spawnSync('docker-compose', ['version'], { env: composeEnv }).status === 0;

/**
 * The services as compose itself resolves them (anchors, merges, interpolation) when docker-compose
 * is installed; otherwise the file parsed here with the same YAML merge keys and default values.
 */
function loadServices(): Record<string, Service> {
  if (dockerCompose) {
    const res = spawnSync('docker-compose', ['-f', COMPOSE_FILE, 'config'], { env: composeEnv, encoding: 'utf8' });
    if (res.status !== 0) throw new Error(`docker-compose config failed:\n${res.stderr}`);
    return parse(res.stdout).services;
  }
  const text = readFileSync(COMPOSE_FILE, 'utf8').replace(/\$\{(\w+)(?::-([^}]*))?\}/g, (_m, _name, fallback = '') => fallback);
  return parse(text, { merge: true }).services;
}

function environmentOf(service: Service): Record<string, string> {
  const env = service.environment ?? {};
  const entries = Array.isArray(env)
    ? env.map((line) => [line.split('=')[0]!, line.slice(line.indexOf('=') + 1)] as const)
    : Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)] as const);
  return Object.fromEntries(entries);
}

const services = loadServices();

describe('docker-compose.yml', () => {
  it.skipIf(!dockerCompose)('is valid for docker-compose (config -q)', () => {
    const res = spawnSync('docker-compose', ['-f', COMPOSE_FILE, 'config', '-q'], { env: composeEnv, encoding: 'utf8' });
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
  });

  it('runs the app as api, worker and dispatcher from one image', () => {
    const built = Object.entries(services).filter(([, s]) => s.build !== undefined).map(([name]) => name);
    expect(built.sort()).toEqual([...APP_SERVICES].sort());
    for (const name of APP_SERVICES) {
      expect(services[name]!.image).toBe(services.api!.image);
      expect(services[name]!.command).toEqual(['node', 'bin/stream-api.mjs', 'serve', '--role', name]);
    }
  });

  it.each(APP_SERVICES)('%s sets only variables src/config.ts reads, and loadConfig accepts them', (name) => {
    const env = environmentOf(services[name]!);
    const unknown = Object.keys(env).filter((k) => !CONFIG_ENV_NAMES.includes(k));
    expect(unknown, `not read by src/config.ts: ${unknown.join(', ')}`).toEqual([]);

    const config = loadConfig(env);
    expect(config.databaseUrl).toMatch(/^postgres:\/\/.+@postgres:5432\//); // never the embedded stand-in
    expect(config.s3.endpoint).toBe('http://minio:9000');
    expect(config.s3.forcePathStyle).toBe(true);
    expect(config.devKey).toBe(false);
    expect(config.metricsPort).toBe(9464); // every role's ops listener: /metrics and probes …
    // … on the internal network only: no service publishes it (compose config writes the long form).
    const published = (services[name]!.ports ?? []).map((p) =>
      typeof p === 'string' ? Number(p.split(':')[0]) : Number((p as { published: number | string }).published),
    );
    expect(published).toEqual(name === 'api' ? [3002] : []);
  });

  it.each(APP_SERVICES)('%s sets HOST to listen on every interface of its container (the default is loopback)', (name) => {
    const env = environmentOf(services[name]!);
    expect(env.HOST).toBe('0.0.0.0');
    expect(loadConfig(env).host).toBe('0.0.0.0');
  });

  it('limits the api to 512M of memory', () => {
    expect(services.api!.deploy?.resources?.limits?.memory).toBe('512M');
  });

  it('leaves worker and dispatcher scalable: no container_name, no host ports', () => {
    for (const name of ['worker', 'dispatcher']) {
      expect(services[name]!.container_name).toBeUndefined();
      expect(services[name]!.ports ?? []).toEqual([]);
    }
  });

  it('creates the bucket the app uses before the app starts', () => {
    const bucket = environmentOf(services.api!).S3_BUCKET;
    expect(services['minio-init']!.command).toEqual(['mb', '--ignore-existing', `local/${bucket}`]);
    expect((services.api as { depends_on?: Record<string, { condition: string }> }).depends_on).toMatchObject({
      postgres: { condition: 'service_healthy' },
      'minio-init': { condition: 'service_completed_successfully' },
    });
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8');

  it('sets only variables src/config.ts reads', () => {
    const names = [...dockerfile.matchAll(/^ENV\s+((?:.|\\\n)+)$/gm)].flatMap((m) =>
      [...m[1]!.matchAll(/(\w+)=/g)].map((n) => n[1]!),
    );
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((n) => !CONFIG_ENV_NAMES.includes(n))).toEqual([]);
  });

  it('ships production dependencies only, runs as non-root, probes /healthz of the ops listener', () => {
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^EXPOSE 3002 9464$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n.*METRICS_PORT \|\| 9464\) \+ '\/healthz'/m);
    expect(dockerfile).toMatch(/^CMD \["node", "bin\/stream-api\.mjs", "serve", "--role", "all"\]$/m);
  });

  it('runs on Node 24 (the current LTS) and listens on the container network, ops listener included', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:24-bookworm-slim$/m);
    const env = loadConfig({ HOST: '0.0.0.0', METRICS_HOST: '0.0.0.0' });
    expect(dockerfile).toMatch(new RegExp(`^\\s+HOST=${env.host}\\b`, 'm'));
    expect(dockerfile).toMatch(new RegExp(`^\\s+METRICS_HOST=${env.metricsHost}$`, 'm'));
  });
});

describe('.ci/run', () => {
  const script = readFileSync(`${ROOT}.ci/run`, 'utf8');

  it('runs the suite on the machine\'s Node, then again on Node 24 first on PATH', () => {
    const lines = script.split('\n').filter((l) => !l.trimStart().startsWith('#'));
    const tests = lines.flatMap((l, i) => (/\bnpm test$/.test(l.trim()) ? [i] : []));
    expect(tests).toHaveLength(2);
    expect(lines.join('\n')).toMatch(/node24="\$\(npx -y node@24 -p process\.execPath\)"/);
    expect(lines[tests[1]!]!.trim()).toBe('PATH="$(dirname "$node24"):$PATH" npm test');
  });
});

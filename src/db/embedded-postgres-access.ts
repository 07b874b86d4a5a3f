// As root, the embedded PostgreSQL runs as the `postgres` user (PostgreSQL refuses root), and that
// user must be able to enter every folder on the way to its data folder and to its programs under
// node_modules. A clone or a DATA_DIR under a private (700) folder such as /root fails deep inside
// initdb with a bare `spawn … EACCES`; this check finds it first and says how to fix it.
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';

/** The user the cluster will run as; null when it does not exist yet (a new user is in no group). */
export type ClusterUser = { uid: number; gid: number; groups: number[] } | null;

interface Blocked {
  folder: string;
  mode: string;
}

/**
 * Null when `user` can enter every existing folder from `/` down to `dataDir` and to `programsDir`;
 * otherwise the one line that names the folders it cannot enter and every way to fix it.
 * Checks the permission bits (owner, group, others), as the kernel does without ACLs.
 */
export async function explainUnreachable(opts: { dataDir: string; programsDir: string; user: ClusterUser }): Promise<string | null> {
  const data = await blockedOnTheWay(opts.dataDir, opts.user);
  const programs = await blockedOnTheWay(await realpath(opts.programsDir).catch(() => opts.programsDir), opts.user);
  if (data.length === 0 && programs.length === 0) return null;

  const blocked = [...new Map([...programs, ...data].map((b) => [b.folder, b])).values()];
  const targets = [
    data.length ? `its data folder ${opts.dataDir}` : null,
    programs.length ? `its programs in ${opts.programsDir}` : null,
  ].filter(Boolean);
  const move = programs.length
    ? 'move the clone (its node_modules) to a folder that user can enter'
    : 'set DATA_DIR to a folder that user can enter (e.g. DATA_DIR=/var/lib/stream-api)';
  return (
    `embedded PostgreSQL cannot start: as root it runs as the "postgres" user, which cannot enter ` +
    `${blocked.map((b) => `${b.folder} (mode ${b.mode})`).join(', ')} on the way to ${targets.join(' and ')}. ` +
    `Fix one of: run stream-api as a non-root user; set DATABASE_URL to a PostgreSQL of your own; ${move}; ` +
    `or let it through with: chmod o+x ${blocked.map((b) => b.folder).join(' ')}`
  );
}

/** Existing folders from `/` down to `target` (inclusive) that `user` may not enter. */
async function blockedOnTheWay(target: string, user: ClusterUser): Promise<Blocked[]> {
  const folders: string[] = [];
  for (let dir = path.resolve(target); ; dir = path.dirname(dir)) {
    folders.unshift(dir);
    if (dir === path.dirname(dir)) break;
  }
  const blocked: Blocked[] = [];
  for (const folder of folders) {
    const st = await stat(folder).catch(() => null);
    if (!st) break; // created later by stream-api itself
    if (!canEnter(st, user)) blocked.push({ folder, mode: (st.mode & 0o777).toString(8) });
  }
  return blocked;
}

function canEnter(st: { uid: number; gid: number; mode: number }, user: ClusterUser): boolean {
  if (user && st.uid === user.uid) return (st.mode & 0o100) !== 0;
  if (user && (st.gid === user.gid || user.groups.includes(st.gid))) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

// The service's API role (`stream-api serve --role api`) in a child process of a bench, so its memory
// and CPU are its own: started with exactly the settings given (none of this shell's stream-api
// settings leak in), on any free port, and stopped by its pid.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT, trackChild } from './child.ts';

export interface ApiProcess {
  child: ChildProcess;
  pid: number;
  /** the API's URL ('' for the worker role, which has none) */
  url: string;
  /** SIGTERM, then waits for the exit (a no-op once it has exited). */
  stop(): Promise<void>;
}

/**
 * Starts the API with `env` (plus PATH, NODE_ENV=production, PORT=0 and METRICS_PORT=0 unless given)
 * and resolves once its banner names the URL it listens on; rejects with its output if it exits first.
 * `role: 'worker'` starts the worker role instead, resolved once it says it runs.
 */
export function startApiProcess(env: Record<string, string>, opts: { verbose?: boolean; role?: 'api' | 'worker' } = {}): Promise<ApiProcess> {
  const role = opts.role ?? 'api';
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/stream-api.mjs'), 'serve', '--role', role], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      PORT: '0',
      METRICS_PORT: '0',
      LOG_LEVEL: opts.verbose ? 'info' : 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', opts.verbose ? 'inherit' : 'pipe'],
  });
  trackChild(child);
  let out = '';
  let err = '';
  child.stderr?.on('data', (d) => (err += String(d)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += String(d);
      if (opts.verbose) process.stdout.write(String(d));
      const url = role === 'api' ? /listening on (http:\/\/\S+)/.exec(out)?.[1] : /stream-api worker running/.test(out) ? '' : undefined;
      if (url !== undefined) resolve({ child, pid: child.pid!, url, stop });
    });
    child.once('exit', (code) => reject(new Error(`the API exited (${code}) before listening:\n${out}\n${err}`)));
  });
}

// Runs a bench helper script in its own Node process (tsx as an --import hook, so the pid we
// sample IS the process doing the work — the `tsx` CLI would put a wrapper process in between).
// The helper prints one `RESULT {json}` line on stdout; its stderr is kept for error reports.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ChildRun<R> {
  child: ChildProcess;
  pid: number;
  /** Resolves with the RESULT object; rejects (with the stderr tail) when the helper fails. */
  done: Promise<R>;
}

const STDERR_TAIL = 16 * 1024;
const live = new Set<ChildProcess>();

let closed = false;

/** Kills every helper still running (by its pid, as we started it), and any started later. */
export function killChildren(): void {
  closed = true;
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

export function trackChild(child: ChildProcess): void {
  if (closed) {
    child.kill('SIGKILL'); // started after an interrupt: cleanup is under way
    return;
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** `onMark` is called when the helper prints `MARK <name>` (e.g. the start and end of the timed part). */
export function runHelper<R>(script: string, input: unknown, opts: { verbose?: boolean; onMark?: (name: string) => void } = {}): ChildRun<R> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(script, import.meta.url)), JSON.stringify(input)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', opts.verbose ? 'inherit' : 'pipe'],
  });
  trackChild(child);
  let stdout = '';
  let stderr = '';
  let scanned = 0;
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    for (let nl = stdout.indexOf('\n', scanned); nl !== -1; nl = stdout.indexOf('\n', scanned)) {
      const line = stdout.slice(scanned, nl);
      scanned = nl + 1;
      if (line.startsWith('MARK ')) opts.onMark?.(line.slice(5));
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    stderr += s;
    if (stderr.length > 2 * STDERR_TAIL) stderr = stderr.slice(-STDERR_TAIL);
  });
  const done = new Promise<R>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line) return resolve(JSON.parse(line.slice('RESULT '.length)) as R);
      reject(new Error(`${script} exited with ${signal ?? `code ${code}`}\n${stderr.slice(-STDERR_TAIL)}${stdout.slice(-4096)}`));
    });
  });
  if (child.pid === undefined) throw new Error(`could not start ${script}`);
  return { child, pid: child.pid, done };
}

/** Tells the parent a point in the helper's run (written synchronously, so it is seen promptly). */
export function mark(name: string): void {
  writeSync(1, `MARK ${name}\n`);
}

/** Writes the helper's result for the parent (the last thing a helper does). */
export function sendResult(result: unknown): void {
  writeSync(1, `RESULT ${JSON.stringify(result)}\n`);
}

// The embedded S3 server (s3rver) of a bench in a process of its own (bench/lib/s3-process.ts), so
// the store's CPU is its own too and not charged to the bench or the API.
import { runHelper } from './child.ts';

export interface StoreProcess {
  endpoint: string;
  pid: number;
  /** Kills it (SIGTERM) and waits for its exit. */
  stop(): Promise<void>;
}

/** Starts s3rver with `bucket`, its data under `dir`; resolves once it listens, rejects if it exits first. */
export async function startStoreProcess(dir: string, bucket: string, opts: { verbose?: boolean } = {}): Promise<StoreProcess> {
  let listening: (endpoint: string) => void = () => {};
  const endpoint = new Promise<string>((resolve) => (listening = resolve));
  const run = runHelper<never>('./s3-process.ts', { dataDir: dir, bucket }, {
    verbose: opts.verbose,
    onMark: (m) => m.startsWith('listening ') && listening(m.slice('listening '.length)),
  });
  const exited = run.done.then(
    () => Promise.reject(new Error('the S3 server exited')),
    (err: Error) => Promise.reject(err),
  );
  exited.catch(() => {}); // after start-up, its exit (ours, at cleanup) is no error
  const stop = async () => {
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGTERM');
    await exited.catch(() => {});
  };
  try {
    return { endpoint: await Promise.race([endpoint, exited]), pid: run.pid, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

// What a bench run creates (a database, processes, a temporary folder) is registered here and undone in
// reverse order, once: when the run ends, fails, or is interrupted (SIGINT / SIGTERM).
import { killChildren } from './child.ts';

const undo: (() => Promise<unknown>)[] = [];
let cleaning: Promise<void> | null = null;

/** `fn` runs at cleanup, before everything registered earlier; its failure is printed, not thrown. */
export function onCleanup(fn: () => Promise<unknown>): void {
  undo.push(fn);
}

/** Kills the helper processes still running, then undoes the rest; later calls wait for the first. */
export function cleanup(): Promise<void> {
  return (cleaning ??= (async () => {
    killChildren();
    for (const fn of undo.reverse()) await fn().catch((err: Error) => console.error(`cleanup: ${err.message}`));
  })());
}

/** Runs a bench's `main` with cleanup at the end; exit code 1 when it throws or answers false. */
export function runBench(main: () => Promise<boolean | void>): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void cleanup().finally(() => process.exit(130)));
  main()
    .then(async (ok) => {
      await cleanup();
      if (ok === false) process.exitCode = 1;
    })
    .catch(async (err: unknown) => {
      console.error(err);
      await cleanup();
      process.exitCode = 1;
    });
}

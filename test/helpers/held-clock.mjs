// Preload for a child process (node --import <this file's URL>?at=<ms since the epoch>): the
// process's clock reads `at` and stands still there until the process gets SIGUSR2, then runs on
// from `at` at real speed. A test uses it to let a cron minute (graphile-worker's cron reads Date)
// come at a moment it chooses, after the child has started. Only `Date.now()` and `new Date()`
// move; timers and performance.now() keep real time.
const at = Number(new URL(import.meta.url).searchParams.get('at'));
if (!Number.isFinite(at)) throw new Error(`held-clock: ?at=<ms> is required, got ${import.meta.url}`);

const RealDate = Date;
let releasedAt = null; // real ms when SIGUSR2 came
const now = () => (releasedAt === null ? at : at + (RealDate.now() - releasedAt));

// A Proxy, not a subclass: dates made by node itself stay `instanceof Date`.
globalThis.Date = new Proxy(RealDate, {
  construct: (target, args, newTarget) => Reflect.construct(target, args.length === 0 ? [now()] : args, newTarget),
  get: (target, prop, receiver) => (prop === 'now' ? now : Reflect.get(target, prop, receiver)),
});
process.on('SIGUSR2', () => {
  releasedAt ??= RealDate.now();
});

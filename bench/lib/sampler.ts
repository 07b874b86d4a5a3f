// Samples, every ~50 ms while a stage runs: the resident memory and CPU of one process (the child
// under test) and the CPU of the PostgreSQL backends serving it (found by application_name), so a
// stage's cost can be split between the client and the server that share this machine's cores.
// Also: what those backends wait for (pg_stat_activity.wait_event, every ~25 ms), and the whole
// machine's busy CPU (/proc/stat), so work of other processes during a stage shows up as noise.
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { cpuSeconds, statusKb } from './proc.ts';

export interface SampleResult {
  /** Highest VmRSS seen in the sampled process (KiB), null if never sampled. */
  peakRssKb: number | null;
  samples: number;
  /** Last CPU seconds seen for the sampled process. */
  processCpu: number | null;
  /** CPU seconds of the PostgreSQL backends with the application_name (sum of last values seen). */
  backendCpu: number;
  backends: number;
  /** Busy CPU seconds of the whole machine (all processes) while sampling. */
  machineCpu: number;
  wallSeconds: number;
  /** Share of samples of an active backend per wait event ('CPU' = no wait event reported). */
  waits: Map<string, number>;
  waitSamples: number;
}

export interface Snapshot {
  at: bigint;
  machineCpu: number;
  processCpu: number;
  backendCpu: number;
}

export interface SamplerOptions {
  pid?: number;
  /** PostgreSQL backends to follow: pg_stat_activity.application_name, looked up through `admin`. */
  backends?: { admin: pg.Pool; applicationName: string };
  intervalMs?: number;
  /** How often to ask pg_stat_activity for the backends and their wait events. */
  lookupMs?: number;
}

const CLK_TCK = 100;

/** Busy jiffies of all CPUs since boot (everything but idle and iowait), in seconds. */
function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
  const [, ...v] = line.trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal (guest is included in user)
  const busy = v[0]! + v[1]! + v[2]! + v[5]! + v[6]! + v[7]!;
  return busy / CLK_TCK;
}

export class Sampler {
  private timer: NodeJS.Timeout | null = null;
  private lookupTimer: NodeJS.Timeout | null = null;
  private readonly backendCpu = new Map<number, number>();
  private readonly waits = new Map<string, number>();
  private waitSamples = 0;
  private peakRssKb: number | null = null;
  private processCpu: number | null = null;
  private samples = 0;
  private lookup: Promise<void> = Promise.resolve();
  private lookupBusy = false;
  private readonly machine0 = machineBusySeconds();
  private readonly t0 = process.hrtime.bigint();
  private stopped: Promise<SampleResult> | null = null;

  constructor(private readonly opts: SamplerOptions) {}

  /** Machine busy CPU, the process's CPU and its backends' CPU right now (for marks inside a stage). */
  snapshot(): Snapshot {
    this.sample();
    let backendCpu = 0;
    for (const cpu of this.backendCpu.values()) backendCpu += cpu;
    return { at: process.hrtime.bigint(), machineCpu: machineBusySeconds(), processCpu: this.processCpu ?? 0, backendCpu };
  }

  /** Also usable after start: the child's pid is known only once it is spawned. */
  setPid(pid: number): void {
    this.opts.pid = pid;
    this.sample();
  }

  start(): this {
    this.timer = setInterval(() => this.sample(), this.opts.intervalMs ?? 50);
    if (this.opts.backends) {
      this.findBackends();
      this.lookupTimer = setInterval(() => this.findBackends(), this.opts.lookupMs ?? 25);
    }
    return this;
  }

  /** Takes a last sample and stops; later calls return the same result. */
  stop(): Promise<SampleResult> {
    this.stopped ??= this.finish();
    return this.stopped;
  }

  private async finish(): Promise<SampleResult> {
    this.sample();
    const machineCpu = machineBusySeconds() - this.machine0;
    const wallSeconds = Number(process.hrtime.bigint() - this.t0) / 1e9;
    if (this.timer) clearInterval(this.timer);
    if (this.lookupTimer) clearInterval(this.lookupTimer);
    await this.lookup;
    let backendCpu = 0;
    for (const cpu of this.backendCpu.values()) backendCpu += cpu;
    return {
      peakRssKb: this.peakRssKb,
      samples: this.samples,
      processCpu: this.processCpu,
      backendCpu,
      backends: this.backendCpu.size,
      machineCpu,
      wallSeconds,
      waits: this.waits,
      waitSamples: this.waitSamples,
    };
  }

  private sample(): void {
    const pid = this.opts.pid;
    if (pid !== undefined) {
      const rss = statusKb(pid, 'VmRSS');
      if (rss !== null) {
        this.samples++;
        if (this.peakRssKb === null || rss > this.peakRssKb) this.peakRssKb = rss;
      }
      const cpu = cpuSeconds(pid);
      if (cpu !== null) this.processCpu = cpu;
    }
    for (const backend of this.backendCpu.keys()) {
      const cpu = cpuSeconds(backend);
      if (cpu !== null) this.backendCpu.set(backend, cpu);
    }
  }

  private findBackends(): void {
    const b = this.opts.backends;
    if (!b || this.lookupBusy) return; // one lookup at a time; a slow one just skips a beat
    this.lookupBusy = true;
    this.lookup = b.admin
      .query<{ pid: number; state: string | null; wait: string | null; query: string | null }>(
        `SELECT pid, state, wait_event_type || ':' || wait_event AS wait, left(query, 40) AS query
           FROM pg_stat_activity WHERE application_name = $1`,
        [b.applicationName],
      )
      .then(({ rows }) => {
        for (const { pid, state, wait, query } of rows) {
          if (!this.backendCpu.has(pid)) this.backendCpu.set(pid, cpuSeconds(pid) ?? 0);
          // The backend doing the load: busy in COPY (state active). Idle pool connections are skipped.
          if (state === 'active' && query && /^\s*COPY/i.test(query)) {
            const key = wait ?? 'CPU';
            this.waits.set(key, (this.waits.get(key) ?? 0) + 1);
            this.waitSamples++;
          }
        }
      })
      .catch(() => {})
      .finally(() => (this.lookupBusy = false));
  }
}

/** "CPU 71%, Client:ClientRead 22%, IO:WALWrite 4%" — the COPY backend's time by wait event. */
export function describeWaits(s: SampleResult, top = 4): string {
  if (s.waitSamples === 0) return 'no samples';
  return [...s.waits.entries()]
    .sort((x, y) => y[1] - x[1])
    .slice(0, top)
    .map(([k, n]) => `${k} ${Math.round((100 * n) / s.waitSamples)}%`)
    .join(', ');
}

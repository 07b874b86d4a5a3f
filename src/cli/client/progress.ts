// Progress display for the client commands: a one-line bar redrawn in place on a terminal, a few
// plain milestone lines when stderr is a pipe or a file. Formatting is pure; the clock is injected.

export interface ProgressSink {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** Bytes (or bytes per second: a rate may be fractional) in binary units: `512 B`, `1.50 MiB`. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(value)} B` : `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${UNITS[unit]}`;
}

export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const totalSeconds = Math.round(ms / 1000);
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}h ${pad(m)}m ${pad(s)}s` : `${m}m ${pad(s)}s`;
}

export function formatPercent(fraction: number): string {
  return `${(clamp01(fraction) * 100).toFixed(1)}%`;
}

/** A bar of exactly `width` cells; partial cells are rounded down so 100% only shows when done. */
export function renderBar(fraction: number, width: number): string {
  const cells = Math.max(0, Math.floor(width));
  const filled = Math.floor(clamp01(fraction) * cells);
  return '█'.repeat(filled) + '░'.repeat(cells - filled);
}

export interface BarLine {
  label: string;
  /** 0..1, or null when the total is unknown (no bar, no percentage) */
  fraction: number | null;
  /** text after the bar, most important first: dropped from the end when the terminal is narrow */
  details: string[];
}

const MIN_BAR = 10;
const MAX_BAR = 40;

/** One line that fits in `columns` (never wraps, which would break the `\r` redraw). */
export function renderLine(line: BarLine, columns: number): string {
  const usable = Math.max(20, columns - 1);
  const head = line.label;
  const pct = line.fraction === null ? '' : formatPercent(line.fraction).padStart(6);
  const details = [...line.details];
  const fixedWidth = (d: string[]) => head.length + (line.fraction === null ? 0 : 3 + pct.length) + d.reduce((n, s) => n + 2 + s.length, 0);
  while (details.length > 0 && fixedWidth(details) + (line.fraction === null ? 0 : MIN_BAR) + 1 > usable) details.pop();
  const tail = details.map((d) => `  ${d}`).join('');
  if (line.fraction === null) return `${head}${tail}`.slice(0, usable);
  const barWidth = Math.min(MAX_BAR, Math.max(MIN_BAR, usable - fixedWidth(details) - 1));
  return `${head} ${renderBar(line.fraction, barWidth)} ${pct}${tail}`.slice(0, usable);
}

/** Rate over a sliding window of samples (smooths bursty socket writes and 1/s server ticks). */
export class RateMeter {
  private samples: { at: number; value: number }[] = [];

  constructor(private readonly windowMs = 3000) {}

  add(at: number, value: number): void {
    this.samples.push({ at, value });
    while (this.samples.length > 2 && this.samples[0]!.at < at - this.windowMs) this.samples.shift();
  }

  /** units per second, or null until two samples are far enough apart to mean anything */
  perSecond(): number | null {
    const first = this.samples[0];
    const last = this.samples.at(-1);
    if (!first || !last || last.at - first.at < 200) return null;
    return ((last.value - first.value) * 1000) / (last.at - first.at);
  }
}

export interface ProgressOptions {
  /** minimum time between two redraws on a terminal */
  redrawMs?: number;
  /** when not a terminal: print a plain line as each of these fractions is passed */
  milestones?: readonly number[];
  now?: () => number;
}

/**
 * One progress line. On a TTY: redrawn with `\r` (throttled), ended with a newline by `done()`. Not a
 * TTY: nothing is redrawn; `milestone()` lines appear as the fraction passes each milestone.
 */
export class ProgressLine {
  readonly tty: boolean;
  private readonly redrawMs: number;
  private readonly milestones: number[];
  private readonly now: () => number;
  private lastDraw = -Infinity;
  private pending: BarLine | null = null;
  private drawn = false;
  private closed = false;

  constructor(
    private readonly sink: ProgressSink,
    opts: ProgressOptions = {},
  ) {
    this.tty = sink.isTTY === true;
    this.redrawMs = opts.redrawMs ?? 100;
    this.milestones = [...(opts.milestones ?? [0.25, 0.5, 0.75])].sort((a, b) => a - b);
    this.now = opts.now ?? Date.now;
  }

  /**
   * Shows `line` (on a TTY, at most once per redrawMs unless `force`: for a change that no later update
   * may follow soon); `plain` is the text of a passed milestone.
   */
  update(line: BarLine, plain?: () => string, force = false): void {
    if (this.closed) return;
    if (!this.tty) {
      let passed = false;
      while (this.milestones.length > 0 && line.fraction !== null && line.fraction >= this.milestones[0]!) {
        this.milestones.shift();
        passed = true;
      }
      if (passed && plain) this.sink.write(`${plain()}\n`);
      return;
    }
    this.pending = line;
    const at = this.now();
    if (!force && at - this.lastDraw < this.redrawMs) return;
    this.draw(at);
  }

  /** Draws the last state at once and ends the line; later updates are ignored. */
  done(final?: BarLine): void {
    if (this.closed) return;
    if (final) this.pending = final;
    if (this.tty && this.pending) this.draw(this.now());
    if (this.tty && this.drawn) this.sink.write('\n');
    this.closed = true;
  }

  /** Ends a half-drawn line so that a message printed now starts on its own line; updates may follow. */
  breakLine(): void {
    if (this.tty && this.drawn && !this.closed) this.sink.write('\n');
    this.drawn = false;
  }

  private draw(at: number): void {
    if (!this.pending) return;
    // \x1b[K clears what a longer previous line left behind.
    this.sink.write(`\r${renderLine(this.pending, this.sink.columns || 80)}\x1b[K`);
    this.drawn = true;
    this.lastDraw = at;
    this.pending = null;
  }
}

function clamp01(n: number): number {
  return Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : 0;
}

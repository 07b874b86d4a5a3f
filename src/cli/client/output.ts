// Where client output goes: the command's result to stdout (JSON only, with --json), everything else —
// messages, progress, warnings — to stderr, so `stream-api … --json | jq` always reads clean JSON.
import type { ProgressSink } from './progress.ts';

export interface Streams {
  stdout: { write(text: string): unknown };
  stderr: ProgressSink;
}

export class Output {
  constructor(
    readonly json: boolean,
    readonly streams: Streams = { stdout: process.stdout, stderr: process.stderr },
  ) {}

  get stderr(): ProgressSink {
    return this.streams.stderr;
  }

  /** The result: `value` as JSON with --json, else the human text (if any). */
  result(value: unknown, human: () => string | null): void {
    if (this.json) {
      this.streams.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      return;
    }
    const text = human();
    if (text !== null) this.streams.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  message(text: string): void {
    this.streams.stderr.write(`${text}\n`);
  }
}

/** Left-aligned columns; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all
    .map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd())
    .join('\n');
}

/** `label  value` lines with the values aligned; null values are left out. */
export function fields(pairs: [string, string | null][]): string {
  const shown = pairs.filter((p): p is [string, string] => p[1] !== null);
  const width = Math.max(...shown.map(([label]) => label.length));
  return shown.map(([label, value]) => `${label.padEnd(width)}  ${value}`).join('\n');
}

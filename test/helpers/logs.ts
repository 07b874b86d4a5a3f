// The service's log lines as a test sees them: a pino logger writing into memory.
import { Writable } from 'node:stream';
import pino from 'pino';
import type { Logger } from '../../src/logger.ts';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A logger at `level` whose lines are kept (parsed) in `lines`. */
export function captureLogs(level = 'info'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as LogLine);
      cb();
    },
  });
  return { logger: pino({ level, base: { service: 'stream-api' } }, sink), lines };
}

/** pino's numeric levels */
export const LEVEL = { info: 30, warn: 40, error: 50 } as const;

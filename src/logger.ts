import pino from 'pino';

export type Logger = pino.Logger;

/** Server logs go to stdout; CLI commands log to stderr so stdout carries only their result. */
export function createLogger(level: string, stream: 'stdout' | 'stderr' = 'stdout'): Logger {
  return pino({ level, base: { service: 'stream-api' } }, pino.destination(stream === 'stdout' ? 1 : 2));
}

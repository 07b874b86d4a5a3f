import pino from 'pino';

export type Logger = pino.Logger;

/** Short-lived live tokens travel as `?token=`; keep them out of request logs. */
export function redactUrl(url: string | undefined): string | undefined {
  return url?.replace(/([?&]token=)[^&#]*/gi, '$1[redacted]');
}

/** Server logs go to stdout; CLI commands log to stderr so stdout carries only their result. */
export function createLogger(level: string, stream: 'stdout' | 'stderr' = 'stdout'): Logger {
  return pino(
    {
      level,
      base: { service: 'stream-api' },
      serializers: {
        req: (req: { method?: string; url?: string; ip?: string; headers?: Record<string, unknown> }) => ({
          method: req.method,
          url: redactUrl(req.url),
          remoteAddress: req.ip,
        }),
      },
    },
    pino.destination(stream === 'stdout' ? 1 : 2),
  );
}

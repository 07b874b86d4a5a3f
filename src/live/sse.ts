// Server-Sent Events over a hijacked Fastify reply: the headers that keep proxies from buffering,
// one frame per event, and a bound on what a client too slow to read may cost in memory.
import type { FastifyReply } from 'fastify';
import { sseFrame } from './events.ts';
import type { LiveSink } from './sessions.ts';

/** A client this far behind is cut off; it reconnects and gets a fresh snapshot. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no', // nginx and friends: pass each event on at once
  connection: 'keep-alive',
} as const;

/** Takes the response over from Fastify and starts the stream. */
export function openSse(reply: FastifyReply): LiveSink {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { ...SSE_HEADERS, 'x-request-id': String(reply.request.id) });
  res.flushHeaders();
  const write = (chunk: string) => {
    if (res.writableEnded || res.destroyed) return;
    res.write(chunk);
    if (res.writableLength > MAX_BUFFERED_BYTES) res.destroy();
  };
  return {
    send: (event, id, data) => write(sseFrame(event, id, data)),
    heartbeat: () => write(': heartbeat\n\n'),
    end: () => {
      if (!res.writableEnded) res.end();
    },
  };
}

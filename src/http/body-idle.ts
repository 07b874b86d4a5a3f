// An idle timeout on request bodies: a client that stops sending mid-body (a stalled upload pins a
// socket, an open multipart upload in storage and a part buffer) is cut off after `idleMs` without
// a byte. Node has no such timeout of its own: `requestTimeout` bounds the whole request (an upload
// of many GB takes long) and the socket timeout also fires while *we* hold the body back.
import type { IncomingMessage } from 'node:http';
import { AppError } from '../errors.ts';

/** How often a watched body is looked at, as a share of the idle timeout (the cut comes ≤ 1/4 late). */
const CHECKS_PER_TIMEOUT = 4;

/**
 * Watches the body of `req` until it ends or the request closes. Progress is the socket's byte count;
 * time in which we do not read (the body is paused by backpressure from storage, or no consumer has
 * started yet) never counts as idle. After `idleMs` without a byte, the body fails with
 * `body_idle_timeout` (408): whoever reads it (the multipart parser, Fastify's body parser) gets the
 * error on the request stream and the request's error answer closes the connection. A body nobody
 * listens to is destroyed, with its socket. `onIdle` is told first (for the log).
 * Returns a function that stops the watch.
 */
export function watchBodyIdle(req: IncomingMessage, idleMs: number, onIdle: () => void): () => void {
  if (req.complete || req.readableEnded) return () => {};
  const socket = req.socket;
  let lastBytes = socket.bytesRead;
  let lastProgressAt = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    if (socket.bytesRead !== lastBytes || req.readableFlowing !== true) {
      lastBytes = socket.bytesRead;
      lastProgressAt = now;
      return;
    }
    if (now - lastProgressAt < idleMs) return;
    stop();
    onIdle();
    const err = new AppError('body_idle_timeout', `no byte of the request body arrived for ${Math.round(idleMs / 1000)} s; the request was cancelled`);
    if (req.listenerCount('error') > 0) req.emit('error', err);
    else req.destroy();
    // The error answer closes the connection once written; a client that reads nothing gets no longer.
    setTimeout(() => socket.destroy(), Math.min(idleMs, 5_000)).unref();
  }, Math.max(10, Math.floor(idleMs / CHECKS_PER_TIMEOUT)));
  timer.unref();
  const stop = () => {
    clearInterval(timer);
    req.off('end', stop);
    req.off('close', stop);
  };
  req.once('end', stop);
  req.once('close', stop);
  return stop;
}

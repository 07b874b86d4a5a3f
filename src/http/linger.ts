// Closing the connection of a request answered before its body was read — not at once. A client
// still sending when the server closes gets a TCP reset, and a reset can destroy the answer before the
// client has read it: an upload refused with 413 or 429 would show as "connection reset" instead
// (RFC 9112 §9.6, "lingering close"). Keep reading (and discarding) a little first.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface LingerLimits {
  /** discard at most this much more of the body … */
  maxBytes: number;
  /** … for at most this long after the answer is sent, then close */
  maxMs: number;
}

export const DEFAULT_LINGER: LingerLimits = { maxBytes: 4 * 1024 * 1024, maxMs: 2000 };

/**
 * Once `res` is sent, lets what still comes of `req`'s body be read and discarded (Node does that
 * for a request it has answered) for at most `maxBytes` or `maxMs`, then closes the connection. When
 * Node closes the connection itself after the answer (the client asked `Connection: close`), it does
 * so with `socket.destroySoon()`: that becomes a half-close — our side ends, theirs is still read —
 * under the same limits. A body that ends within the limits on a kept-alive connection leaves it open.
 */
export function lingerClose(req: IncomingMessage, res: ServerResponse, limits: LingerLimits = DEFAULT_LINGER): void {
  const socket = req.socket as Socket;
  let lingering = false;
  let halfClosed = false;
  const linger = () => {
    if (lingering || socket.destroyed) return;
    lingering = true;
    const fromBytes = socket.bytesRead;
    const timer = setTimeout(() => socket.destroy(), limits.maxMs);
    timer.unref();
    const onData = () => {
      if (socket.bytesRead - fromBytes > limits.maxBytes) socket.destroy();
    };
    const stop = () => {
      clearTimeout(timer);
      socket.off('data', onData);
    };
    socket.on('data', onData);
    socket.once('close', stop);
    // The whole body came: a kept-alive connection may serve the next request; a half-closed one
    // closes when the client closes its side (or the timer ends it).
    req.once('end', () => {
      if (!halfClosed) stop();
    });
  };
  socket.destroySoon = () => {
    halfClosed = true;
    socket.end();
    linger();
  };
  res.once('finish', () => {
    if (!req.complete) linger();
  });
}

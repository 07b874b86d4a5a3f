// The WebSocket transport: the same events as SSE, as JSON messages { event, id, data }; the close
// code says how it ended (1000 done, 1001 shutdown, 4401/4404 access ended — see access.ts).
import WebSocket from 'ws';
import { ACCESS_LOST } from './access.ts';
import type { LiveSink } from './sessions.ts';

/** A client this far behind is cut off; it reconnects and gets a fresh snapshot. */
const MAX_BUFFERED_BYTES = 1024 * 1024;

export function wsSink(socket: WebSocket): LiveSink {
  // A peer that misses a whole heartbeat period without answering a ping is gone.
  let answered = true;
  socket.on('pong', () => (answered = true));
  return {
    send(event, id, data) {
      if (socket.readyState !== WebSocket.OPEN) return;
      socket.send(JSON.stringify({ event, id, data }));
      if (socket.bufferedAmount > MAX_BUFFERED_BYTES) socket.terminate();
    },
    heartbeat() {
      if (socket.readyState !== WebSocket.OPEN) return;
      if (!answered) return socket.terminate();
      answered = false;
      socket.ping();
    },
    end(reason) {
      if (socket.readyState !== WebSocket.OPEN && socket.readyState !== WebSocket.CONNECTING) return;
      if (reason === 'done') socket.close(1000, 'done');
      else if (reason === 'shutdown') socket.close(1001, 'server shutting down');
      // Access ended: 4401/4404 with the stable code as the reason (after an `error` message saying why).
      else socket.close(ACCESS_LOST[reason].wsCloseCode, reason);
    },
  };
}

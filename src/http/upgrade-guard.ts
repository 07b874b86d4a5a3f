// A WebSocket upgrade pipelined behind a request still being answered on the same connection is
// more than @fastify/websocket can serve: it logs "ServerResponse has an already assigned socket" and
// leaves the socket to nobody (Node has let go of it on `upgrade`), so it stays open for good — one
// connection pinned per such request. This closes those connections once the earlier answer is sent.
import type { Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { finished } from 'node:stream';

/** Watches `server` for upgrades that arrive while their connection is still answering a request. */
export function closePipelinedUpgrades(server: Server): void {
  const answering = new WeakMap<Duplex, ServerResponse>();
  server.on('request', (req, res) => {
    answering.set(req.socket, res);
    finished(res, () => {
      if (answering.get(req.socket) === res) answering.delete(req.socket);
    });
  });
  server.prependListener('upgrade', (_req, socket: Duplex) => {
    const earlier = answering.get(socket);
    if (earlier) finished(earlier, () => socket.destroy());
  });
}

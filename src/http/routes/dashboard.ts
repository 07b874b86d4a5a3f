// The web dashboard: hand-written static files under public/, served without authentication (the page
// asks for an API key and sends it on every API call itself). Registered outside the API-key scope.
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

const PUBLIC_DIR = fileURLToPath(new URL('../../../public/', import.meta.url));

// Only our own scripts and styles, only our own origin to talk to: a server value that ever slipped into
// the DOM as markup still could not run or phone home.
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, {
    root: PUBLIC_DIR,
    prefix: '/',
    // One route per file found at start-up instead of a `/*` catch-all, so an unknown path still
    // reaches the app's JSON not-found handler and no API route can be shadowed.
    wildcard: false,
    index: 'index.html',
    decorateReply: false,
    // Small files that change with each release: always revalidate (ETag), never serve a stale script.
    cacheControl: false,
    setHeaders(reply) {
      reply.header('cache-control', 'no-cache');
      reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
    },
  });
}

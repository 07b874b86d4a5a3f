// The web dashboard: hand-written static files under public/, served without authentication (the page
// asks for an API key and sends it on every API call itself). Registered outside the API-key scope.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';

const PUBLIC_DIR = fileURLToPath(new URL('../../../public/', import.meta.url));
/** Uppy's prebuilt browser bundle (the `uppy` package): the upload form's file picker and tus client. */
const UPPY_DIST = path.join(path.dirname(createRequire(import.meta.url).resolve('uppy/package.json')), 'dist');
const UPPY_FILES = new Set(['/uppy.min.mjs', '/uppy.min.css']);

// Only our own scripts and styles, only our own origin to talk to: a server value that ever slipped into
// the DOM as markup still could not run or phone home. Uppy needs nothing more: its styles are a file,
// and the inline styles it sets go through the CSSOM (element.style), which style-src does not govern.
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

function securityHeaders(reply: FastifyReply): void {
  // Small files that change with each release: always revalidate, never run a stale script.
  reply.header('cache-control', 'no-cache');
  reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
  reply.header('x-content-type-options', 'nosniff');
  reply.header('referrer-policy', 'no-referrer');
}

export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/',
    {
      schema: {
        tags: ['dashboard'],
        security: [],
        summary: 'The web dashboard (HTML page; it asks for an API key)',
        produces: ['text/html'],
        response: { 200: Type.String({ description: 'public/index.html' }) },
      },
    },
    async (_request, reply) => {
      securityHeaders(reply);
      return reply.type('text/html; charset=utf-8').send(await readFile(`${PUBLIC_DIR}index.html`));
    },
  );

  // Scripts and styles under one `/assets/*` route: it cannot shadow an API path, and an unknown file
  // falls through to the app's JSON not-found handler.
  await app.register(fastifyStatic, {
    root: `${PUBLIC_DIR}assets`,
    prefix: '/assets/',
    index: false,
    decorateReply: false,
    cacheControl: false,
    setHeaders: securityHeaders,
  });
  // Uppy served from node_modules under /assets/vendor/uppy/ (no CDN: the browser may have no internet);
  // only the two files the page loads, not the rest of the package.
  await app.register(fastifyStatic, {
    root: UPPY_DIST,
    prefix: '/assets/vendor/uppy/',
    index: false,
    decorateReply: false,
    cacheControl: false,
    allowedPath: (pathName) => UPPY_FILES.has(pathName),
    setHeaders: securityHeaders,
  });
}

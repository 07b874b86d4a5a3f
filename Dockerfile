# syntax=docker/dockerfile:1
# One image for every role: `serve --role all|api|worker|dispatcher` (see docker-compose.yml).
# The app runs its TypeScript through tsx (a production dependency): there is no build step.

# The current Node LTS; package.json's engines (>= 20.19) stay wider, and CI runs the suite on 24 too.
ARG NODE_IMAGE=node:24-bookworm-slim

# Production dependencies only, exactly as locked.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
# In a container the network is the boundary: the API and the ops listener (/metrics, probes) listen
# on every interface of it; compose publishes only the API's port.
ENV NODE_ENV=production \
    DATA_DIR=/data \
    HOST=0.0.0.0 \
    METRICS_HOST=0.0.0.0
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
# Everything else the app needs at run time (src, bin, migrations, public, examples …);
# .dockerignore keeps tests, benchmarks, docs and local state out.
COPY . .
# The code stays root-owned and read-only to the app. /data is only written without DATABASE_URL /
# S3_ENDPOINT (embedded stand-ins) or with DEV_API_KEY=true; tsx caches compiled files in /tmp.
RUN mkdir -p /data && chown node:node /data
USER node

# 3002: the API (api, all); 9464: the ops listener, /metrics and probes (every role).
EXPOSE 3002 9464
# /healthz of the ops listener, which every role has (curl is not in the slim image; node's fetch is).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.METRICS_PORT || 9464) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "bin/stream-api.mjs", "serve", "--role", "all"]

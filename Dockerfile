# syntax=docker/dockerfile:1
# Node 24, the current LTS line. better-sqlite3 12.x ships prebuilt binaries for it (and bufferutil's are
# N-API, any Node); the full image still has python3, make and g++ should a prebuilt binary be unavailable.
FROM node:24-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY config ./config
COPY public ./public
RUN npm run build
RUN npm prune --omit=dev --no-audit --no-fund

# Runtime stage: only production dependencies, compiled code, config and static files.
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    DATABASE_URL=sqlite:/app/data/relay.db \
    SPOOL_DIR=/app/data/spool
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/config ./config
COPY --from=build /app/public ./public
RUN mkdir -p /app/data && chown -R node:node /app/data
# The SQLite ledger, API keys, the spool and a self-signed certificate live here: mount a volume
# (docker run -v relay-data:/app/data …) or they are lost with the container.
VOLUME /app/data
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"]
# SIGTERM drains sessions (DRAIN_TIMEOUT_MS); give the container at least that long to stop.
STOPSIGNAL SIGTERM
# A 64 MiB young generation: relaying audio allocates a buffer per frame, and with V8's default
# garbage collection took about half of the relay's CPU; one V8 helper thread, so GC helpers do
# not compete with the event loop on the relay's one core (see bench/README.md).
# Keep these flags the same as `npm start`'s (a test checks).
CMD ["node", "--max-semi-space-size=64", "--v8-pool-size=1", "dist/src/cli/index.js", "serve"]

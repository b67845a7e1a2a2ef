# syntax=docker/dockerfile:1
#
# realtime-gateway image (SPEC §7). See docs/deployment.md.
#
#   docker build -t realtime-gateway:0.1.0 .
#
# Stages: `build` compiles TypeScript with every dependency installed; `prod-deps`
# installs production dependencies only; `runtime` gets dist/, those node_modules and
# package.json, nothing else (no sources, tests, npm cache or dev tools).

# Node 24 is the active LTS (Node 20 is end-of-life). Pin the full version; CI with
# Renovate/Dependabot should also pin the digest (@sha256:...) and bump both together.
FROM node:24.21.0-bookworm-slim AS base
WORKDIR /app

# The SDK and React packages are npm workspaces (packages/*); the image needs only the
# root package: --workspaces=false --include-workspace-root installs it alone (npm ci
# still reads the workspaces' package.json files, so they are copied first). The demo's
# browser bundle is built from the client's sources (scripts/build-assets.mjs).
FROM base AS build
COPY package.json package-lock.json ./
COPY packages/client/package.json ./packages/client/
COPY packages/react/package.json ./packages/react/
RUN npm ci --workspaces=false --include-workspace-root --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
COPY packages/client/src ./packages/client/src
RUN npm run build

FROM base AS prod-deps
COPY package.json package-lock.json ./
COPY packages/client/package.json ./packages/client/
COPY packages/react/package.json ./packages/react/
# --ignore-scripts: no production dependency needs an install script, and none may run one.
# Without the workspaces: no links to packages/ (not in the image) and no React.
RUN npm ci --omit=dev --ignore-scripts --workspaces=false --include-workspace-root --no-audit --no-fund \
  && npm cache clean --force

FROM base AS runtime
# tini as PID 1: forwards SIGTERM to node (which drains, SPEC §4) and reaps zombies.
# Debian's package installs it as /usr/bin/tini.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
  PORT=8080 \
  HOST=0.0.0.0
# Everything is owned by root and only readable by the runtime user, so the process
# cannot change its own code; the root filesystem can be mounted read-only.
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# The base image's `node` user, by number: Kubernetes' runAsNonRoot can only verify
# a numeric user.
USER 1000:1000
EXPOSE 8080
# No HEALTHCHECK: Kubernetes ignores it and probes /livez and /readyz itself;
# docker-compose.yml declares its own.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/server/main.js"]

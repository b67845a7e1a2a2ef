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

FROM base AS build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

FROM base AS prod-deps
COPY package.json package-lock.json ./
# --ignore-scripts: no production dependency needs an install script, and none may run one.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
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

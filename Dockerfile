# pgveil container image: build stage compiles TypeScript with the same
# `npm ci` the README uses; the runtime stage carries only production
# dependencies and the compiled output (no tests, benches or PostgreSQL
# binaries: those are dev dependencies), and runs as a non-root user.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
# bin/ is the pgveil-cli link dependency that npm ci installs.
COPY bin ./bin
COPY src ./src
RUN npm ci

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY bin ./bin
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY config/schema ./config/schema
USER node
# Mount the config dir (pgveil.yaml, users.yaml, policy.yaml, certs) at
# /etc/pgveil and pass the master key as PGVEIL_MASTER_KEY or a mounted file.
VOLUME ["/etc/pgveil"]
EXPOSE 6432 9187
# Reads the same config as serve: GET /healthz when it opens `admin:`,
# otherwise a PostgreSQL SSLRequest to the client port (exit 0 or 1).
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
  CMD ["node", "bin/pgveil.js", "healthcheck", "--config", "/etc/pgveil/pgveil.yaml"]
ENTRYPOINT ["node", "bin/pgveil.js", "serve", "--config", "/etc/pgveil/pgveil.yaml"]

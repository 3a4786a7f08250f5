# pgveil container image: build stage compiles TypeScript with the same
# `npm ci` the README uses; the runtime stage carries only production
# dependencies and the compiled output, and runs as a non-root user.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npm ci

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY config/schema ./config/schema
USER node
# Mount the config dir (pgveil.yaml, users.yaml, policy.yaml, certs) at
# /etc/pgveil and pass the master key as PGVEIL_MASTER_KEY or a mounted file.
VOLUME ["/etc/pgveil"]
EXPOSE 6432 9187
# Expects `admin: { host: 0.0.0.0, port: 9187 }` in the mounted pgveil.yaml.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9187/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/pgveil.js", "serve", "--config", "/etc/pgveil/pgveil.yaml"]

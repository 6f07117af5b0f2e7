# Sobranie Realtime gateway/worker image (ROLE selects which; see README).
#
# Base: Node 22 on Debian trixie. The preferred uWebSockets.js build
# (@btc-vision/uwebsockets.js 20.57) needs glibc >= 2.38; bookworm has 2.36
# and the fallback build (@trufflesuite/uws-js-unofficial) supports Node <= 20
# only, so on a bookworm Node 22 image neither loads. Trixie ships glibc 2.41.

FROM node:22-trixie-slim AS build
WORKDIR /app
# The workspaces' manifests come first so `npm ci` links @sobranie/* (and is cached) before any source changes.
COPY package.json package-lock.json ./
COPY packages/protocol/package.json ./packages/protocol/
COPY packages/publisher/package.json ./packages/publisher/
COPY packages/client/package.json ./packages/client/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY packages ./packages
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:22-trixie-slim
ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
# node_modules/@sobranie/* link here: the built SDK packages the server imports.
COPY --from=build --chown=node:node /app/packages ./packages
COPY --from=build --chown=node:node /app/dist/src ./dist/src
COPY --from=build --chown=node:node /app/dist/client ./dist/client
USER node
EXPOSE 8080
# /readyz: 200 once broker, store and (worker) persist queue are ready; 503 while draining.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node as PID 1 receives SIGTERM directly: the app drains (docs/operations.md: Graceful stop).
CMD ["node", "dist/src/main.js"]

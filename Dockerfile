# Minimal image for the ferry CLI; the controller image and its hardening come with the install issue.
# Build context: run `npm ci` (which bundles dist/) before `docker build`.
FROM node:24-bookworm-slim
WORKDIR /opt/ferry
COPY package.json ./
COPY dist ./dist
USER node
ENTRYPOINT ["node", "/opt/ferry/dist/ferry.mjs"]

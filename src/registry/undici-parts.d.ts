// undici's internal modules ship without types; src/registry/undici.ts gives them the package's own.
declare module "undici/lib/dispatcher/agent.js" {
  const value: unknown;
  export default value;
}
declare module "undici/lib/dispatcher/dispatcher.js" {
  const value: unknown;
  export default value;
}
declare module "undici/lib/dispatcher/env-http-proxy-agent.js" {
  const value: unknown;
  export default value;
}
declare module "undici/lib/dispatcher/proxy-agent.js" {
  const value: unknown;
  export default value;
}
declare module "undici/lib/api/index.js" {
  const value: object;
  export default value;
}

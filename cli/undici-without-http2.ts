// undici requires node:http2 as it loads, ~14 ms of every registry command on this machine, though Ferry never
// offers HTTP/2 (allowH2: false in src/registry/http.ts). undici already runs without http2 (it catches the failed
// require), so the bundle and the single executable hand it a module that fails to load; nothing else is affected.
import type { Plugin } from "esbuild-wasm";

/** The esbuild plugin; `product` names what http2 is left out of, in the error undici catches. */
export function undiciWithoutHttp2(product: string): Plugin {
  return {
    name: "undici-without-http2",
    setup(builder) {
      builder.onResolve({ filter: /^node:http2$/ }, (args) =>
        /[\\/]node_modules[\\/]undici[\\/]/.test(args.importer) ? { path: "node:http2", namespace: "left-out" } : undefined);
      builder.onLoad({ filter: /.*/, namespace: "left-out" }, () => ({
        contents: `throw new Error('node:http2 is left out of ${product}: Ferry speaks HTTP/1.1 to registries');`,
        loader: "js",
      }));
    },
  };
}

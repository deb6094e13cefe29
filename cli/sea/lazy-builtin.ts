// Built-in modules that a V8 startup snapshot cannot hold (node:http keeps a native handle, so building the snapshot
// aborts; others Node has not verified). While the snapshot is built, the bundle gets a stand-in for each that loads
// the real module at its first use, which comes after the snapshot is restored, in the running command. Outside
// snapshot building the real module is returned. `keys` are the module's own property names, read by
// cli/sea/build.ts, so esbuild's interop helpers can list the module's members without loading it.
import { startupSnapshot } from "node:v8";

type Module = Record<PropertyKey, unknown>;

/**
 * `primitives` are the module's members that are plain values (numbers, strings) as the build read them: a module
 * may check one as it loads (undici: `Number.isInteger(http.maxHeaderSize)`), before the real module is there.
 */
export function lazyBuiltin(id: string, keys: readonly string[], primitives: Readonly<Record<string, unknown>> = {}): unknown {
  if (!startupSnapshot.isBuildingSnapshot()) return process.getBuiltinModule(id);
  let real: Module | undefined;
  const load = (): Module => (real ??= process.getBuiltinModule(id) as Module);
  // Once the snapshot is restored (or anything loaded the module) the stand-in is the module itself.
  const loaded = (): Module | undefined => (real !== undefined || !startupSnapshot.isBuildingSnapshot() ? load() : undefined);
  const members = new Map<PropertyKey, unknown>();
  const member = (key: PropertyKey): unknown => {
    if (!members.has(key)) members.set(key, lazyMember(() => load()[key]));
    return members.get(key);
  };
  const known = (key: PropertyKey) => typeof key === "string" && keys.includes(key);
  return new Proxy({}, {
    get: (_, key) => {
      const module = loaded();
      if (module !== undefined) return module[key];
      if (typeof key === "string" && Object.hasOwn(primitives, key)) return primitives[key];
      return key === "__esModule" ? undefined : member(key);
    },
    has: (_, key) => {
      const module = loaded();
      return module !== undefined ? key in module : known(key);
    },
    ownKeys: () => {
      const module = loaded();
      return module !== undefined ? Reflect.ownKeys(module) : [...keys];
    },
    getOwnPropertyDescriptor: (_, key) => {
      const module = loaded();
      if (module !== undefined) {
        const descriptor = Reflect.getOwnPropertyDescriptor(module, key);
        return descriptor && { ...descriptor, configurable: true };
      }
      if (!known(key)) return undefined;
      const value = typeof key === "string" && Object.hasOwn(primitives, key) ? primitives[key] : member(key);
      return { configurable: true, enumerable: true, writable: false, value };
    },
    set: (_, key, value) => Reflect.set(load(), key, value),
  });
}

// A member read off a module before it is loaded (`const { IncomingMessage } = require("node:http")`): calls,
// `new`, `instanceof` and property reads all reach the real member.
function lazyMember(resolve: () => unknown): unknown {
  // A bound function: callable and constructible, with no own `prototype` to pin the proxy's answers.
  const target = function () {}.bind(null);
  type Member = new (...args: unknown[]) => object;
  const real = () => resolve() as Member;
  const proxy: object = new Proxy(target, {
    get: (_, key) => Reflect.get(real(), key),
    has: (_, key) => key in real(),
    apply: (_, self, args: unknown[]) => Reflect.apply(real() as unknown as (...args: unknown[]) => unknown, self, args),
    construct: (_, args: unknown[], newTarget: Member) => Reflect.construct(real(), args, newTarget === proxy ? real() : newTarget),
    getPrototypeOf: () => Reflect.getPrototypeOf(real()),
    set: (_, key, value) => Reflect.set(real(), key, value),
  });
  return proxy;
}

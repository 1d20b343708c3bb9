import http from "node:http";
import { isRecord } from "./functionRegistration";
import type { ProgrammingModel } from "./invokeFunction";

/** What the library answers at the worker's init handshake; `HttpUri` only when the app called `app.setup({ enableHttpStream: true })`. */
export interface WorkerCapabilities {
  /** The library's HTTP proxy (`http://localhost:<port>/`): HTTP invocations are forwarded there instead of carrying their bodies over RPC. */
  HttpUri?: string;
  [name: string]: string | undefined;
}

const handshakes = new WeakMap<object, Promise<WorkerCapabilities>>();

/**
 * The init handshake the Node worker makes once, after loading the app's modules: the library's
 * `getCapabilities` locks `app.setup` and, with HTTP streams enabled, starts its HTTP proxy and
 * answers its address as `HttpUri`. Once per programming model, as once per worker process: the
 * proxy lives as long as the process. Locally it must not keep a process (a test run) alive, so
 * the proxy's listening socket is unref'd.
 */
export function workerCapabilities(model: ProgrammingModel): Promise<WorkerCapabilities> {
  let handshake = handshakes.get(model);
  if (!handshake) {
    handshake = handshakeOnce(model);
    handshakes.set(model, handshake);
  }
  return handshake;
}

async function handshakeOnce(model: ProgrammingModel): Promise<WorkerCapabilities> {
  if (typeof model.getCapabilities !== "function") return {};
  // The library creates its proxy server synchronously within the call (before its first await).
  const created: http.Server[] = [];
  const createServer = http.createServer;
  http.createServer = ((...args: Parameters<typeof http.createServer>) => {
    const server = createServer(...args);
    created.push(server);
    return server;
  }) as typeof http.createServer;
  let answer: Promise<unknown>;
  try {
    answer = Promise.resolve(model.getCapabilities({}));
  } finally {
    http.createServer = createServer;
  }
  for (const server of created) server.unref();
  const capabilities = await answer;
  const out: WorkerCapabilities = {};
  if (isRecord(capabilities)) for (const [key, value] of Object.entries(capabilities)) if (typeof value === "string") out[key] = value;
  return out;
}

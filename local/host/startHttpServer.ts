import { randomUUID } from "node:crypto";
import { Agent, createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { forwardToHttpProxy } from "./forwardToHttpProxy";
import { isRecord, triggerOf, type FunctionRegistration } from "./functionRegistration";
import type { RpcInvocationRequest, RpcInvocationResponse } from "./invokeFunction";
import type { RpcTypedData } from "./eventHubTriggerInput";
import { internalErrorProblem, methodNotAllowedProblem, notFoundProblem, type Problem } from "../../shared/reports/Problem";
import { comparePrecedence, compileRoute, type RouteTemplate } from "./routeTemplate";

export interface HttpServerOptions {
  registrations: readonly FunctionRegistration[];
  port: number;
  /** host.json `extensions.http.routePrefix`; "api" by default. */
  routePrefix: string;
  invoke: (registration: FunctionRegistration, request: RpcInvocationRequest) => Promise<RpcInvocationResponse>;
  /**
   * The worker's `HttpUri` capability (the app enabled HTTP streams): requests and responses then
   * flow through the library's HTTP proxy as streams instead of as buffered RPC bodies.
   */
  httpUri?: string;
  health: () => Record<string, unknown>;
  error: (message: string) => void;
}

export interface HttpServer {
  readonly port: number;
  /** `http://localhost:<port>/<routePrefix>` */
  readonly baseUrl: string;
  readonly counters: { requests: number; errors: number };
  close(): Promise<void>;
}

interface Route {
  registration: FunctionRegistration;
  triggerName: string;
  template: RouteTemplate;
  methods: Set<string>;
}

/**
 * Serves HTTP-triggered functions as `func start` does: `http://localhost:7071/api/<route>`, route
 * templates with parameters, the trigger's methods, no function keys locally. Each request is
 * handed to the function as the RPC `http` input and the RPC response is written back, or, when the
 * worker answered `HttpUri` (HTTP streams), forwarded to the library's proxy and its response
 * streamed back (forwardToHttpProxy.ts). Built in: `GET /<prefix>/health`.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const prefix = options.routePrefix.replace(/^\/+|\/+$/g, "");
  const routes: Route[] = [];
  for (const registration of options.registrations) {
    const trigger = triggerOf(registration);
    if (trigger.binding.type.toLowerCase() !== "httptrigger") continue;
    const route = typeof trigger.binding.route === "string" && trigger.binding.route !== "" ? trigger.binding.route : registration.name;
    const methods = Array.isArray(trigger.binding.methods) ? trigger.binding.methods.map((m) => String(m).toUpperCase()) : ["GET", "POST"];
    routes.push({ registration, triggerName: trigger.name, template: compileRoute(route), methods: new Set(methods) });
  }
  routes.sort((a, b) => comparePrecedence(a.template, b.template));
  const counters = { requests: 0, errors: 0 };
  const proxyAgent = options.httpUri ? new Agent({ keepAlive: true }) : undefined;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    counters.requests++;
    const host = req.headers.host ?? `localhost:${port}`;
    const url = new URL(req.url ?? "/", `http://${host}`);
    const method = (req.method ?? "GET").toUpperCase();
    const path = stripPrefix(url.pathname, prefix);
    if (path === undefined) return sendProblem(res, notFoundProblem(`No route here: the functions' routes live under /${prefix}/.`));
    if (path.replace(/\/+$/, "").toLowerCase() === "health") {
      if (method === "GET") return sendJson(res, 200, options.health());
      return sendProblem(res, methodNotAllowedProblem(`/${prefix}/health answers GET only.`), ["GET"]);
    }

    let found: { route: Route; params: Record<string, string> } | undefined;
    const allowed = new Set<string>();
    for (const route of routes) {
      const params = route.template.match(path);
      if (!params) continue;
      if (!route.methods.has(method)) {
        for (const m of route.methods) allowed.add(m);
        continue;
      }
      found = { route, params };
      break;
    }
    if (!found && allowed.size > 0) {
      const allow = [...allowed].sort();
      return sendProblem(res, methodNotAllowedProblem(`/${prefix}/${shown(path)} answers ${allow.join(", ")}, not ${shown(method)}.`), allow);
    }
    if (!found) return sendProblem(res, notFoundProblem(`No function serves /${prefix}/${shown(path)}.`));

    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[key] = Array.isArray(value) ? value.join(", ") : value;
    }
    const http: Record<string, unknown> = { method, url: url.toString(), headers, params: found.params };
    if (options.httpUri && proxyAgent) {
      const { registration, triggerName } = found.route;
      // What the host sends over RPC when it proxies: the route parameters, headers and query as trigger metadata (the library reads
      // the parameters and headers from there and the URL, query included, from the proxied request).
      const triggerMetadata: Record<string, RpcTypedData> = { Headers: { json: JSON.stringify(headers) }, Query: { json: JSON.stringify(Object.fromEntries(url.searchParams)) } };
      for (const [name, value] of Object.entries(found.params)) triggerMetadata[name] = { string: value };
      const invocationId = randomUUID();
      return forwardToHttpProxy(req, res, {
        httpUri: options.httpUri,
        agent: proxyAgent,
        invocationId,
        invoke: () => options.invoke(registration, { invocationId, inputData: [{ name: triggerName, data: { http } }], triggerMetadata }),
      });
    }
    const body = await readBody(req);
    http.body = body.length > 0 ? { bytes: new Uint8Array(body) } : { string: "" };
    const response = await options.invoke(found.route.registration, {
      inputData: [{ name: found.route.triggerName, data: { http } }],
    });
    writeRpcHttp(res, httpOutputOf(response));
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      counters.errors++;
      options.error(`HTTP ${req.method} ${req.url} failed: ${error instanceof Error ? error.stack : String(error)}`);
      if (!res.headersSent) sendProblem(res, internalErrorProblem("The function threw; the host log has the cause."));
      // A body already under way is cut, so the client sees a broken transfer rather than a complete-looking short one.
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "EADDRINUSE"
          ? new Error(`port ${options.port} on 127.0.0.1 is in use (another functions host or func start?): stop it or choose another port`)
          : error,
      ),
    );
    server.listen(options.port, "127.0.0.1", () => {
      server.removeAllListeners("error");
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    baseUrl: `http://localhost:${port}/${prefix}`,
    counters,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        proxyAgent?.destroy();
      });
      return closing;
    },
  };
}

function stripPrefix(pathname: string, prefix: string): string | undefined {
  const path = pathname.replace(/^\/+/, "");
  if (prefix === "") return path;
  const lower = path.toLowerCase();
  if (lower === prefix.toLowerCase()) return "";
  if (!lower.startsWith(`${prefix.toLowerCase()}/`)) return undefined;
  return path.slice(prefix.length + 1);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/** The RPC http output: the `$return` binding's value, else the first http output binding. */
function httpOutputOf(response: RpcInvocationResponse): Record<string, unknown> | undefined {
  if (isRecord(response.returnValue) && isRecord(response.returnValue.http)) return response.returnValue.http;
  for (const output of response.outputData ?? []) {
    if (isRecord(output.data) && isRecord(output.data.http)) return output.data.http;
  }
  return undefined;
}

function writeRpcHttp(res: ServerResponse, http: Record<string, unknown> | undefined): void {
  if (!http) {
    res.writeHead(204).end();
    return;
  }
  const status = Number(http.statusCode ?? 200) || 200;
  const headers: Record<string, string | string[]> = {};
  if (isRecord(http.headers)) for (const [k, v] of Object.entries(http.headers)) headers[k] = String(v);
  if (Array.isArray(http.cookies) && http.cookies.length > 0) headers["set-cookie"] = http.cookies.filter(isRecord).map(cookieHeader);
  const body = typedDataBytes(http.body);
  res.writeHead(status, headers);
  res.end(body);
}

function typedDataBytes(data: unknown): Buffer {
  if (!isRecord(data)) return Buffer.alloc(0);
  if (data.bytes instanceof Uint8Array) return Buffer.from(data.bytes);
  if (typeof data.string === "string") return Buffer.from(data.string);
  if (typeof data.json === "string") return Buffer.from(data.json);
  if (typeof data.int === "number" || typeof data.double === "number") return Buffer.from(String(data.int ?? data.double));
  return Buffer.alloc(0);
}

/** Cookies come back with nullable wrappers (`{value: …}`), as `toRpcHttpCookie` writes them. */
function cookieHeader(cookie: Record<string, unknown>): string {
  const nullable = (v: unknown): unknown => (isRecord(v) ? v.value : v);
  const parts = [`${String(cookie.name)}=${String(cookie.value ?? "")}`];
  const path = nullable(cookie.path);
  const domain = nullable(cookie.domain);
  const maxAge = nullable(cookie.maxAge);
  if (typeof path === "string") parts.push(`Path=${path}`);
  if (typeof domain === "string") parts.push(`Domain=${domain}`);
  if (typeof maxAge === "number") parts.push(`Max-Age=${maxAge}`);
  if (nullable(cookie.secure) === true) parts.push("Secure");
  if (nullable(cookie.httpOnly) === true) parts.push("HttpOnly");
  if (cookie.sameSite === "lax" || cookie.sameSite === "strict") parts.push(`SameSite=${cookie.sameSite === "lax" ? "Lax" : "Strict"}`);
  if (cookie.sameSite === "explicitNone") parts.push("SameSite=None");
  return parts.join("; ");
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" }).end(JSON.stringify(body));
}

/** An RFC 9457 problem body, as the app's own routes answer. */
function sendProblem(res: ServerResponse, problem: Problem, allow?: readonly string[]): void {
  const headers: Record<string, string> = { "content-type": "application/problem+json" };
  if (allow) headers.allow = allow.join(", ");
  res.writeHead(problem.status, headers).end(JSON.stringify(problem));
}

/** Request text echoed in a problem, cut to a readable length. */
function shown(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

import http, { type IncomingMessage, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";

export interface ProxyForwarding {
  /** The library's proxy, as the worker answered it at the handshake (`HttpUri`). */
  httpUri: string;
  /** Keeps connections to the proxy open between requests; the server destroys it on close. */
  agent: http.Agent;
  invocationId: string;
  /** Starts the invocation over "RPC" (trigger metadata only: the request itself reaches the function through the proxy). */
  invoke: () => Promise<unknown>;
}

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1), so a proxy does not pass them on. */
const hopByHop = new Set(["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"]);

/** How long the host waits for the proxy's response after the invocation ended (the library writes it before the invocation returns). */
const responseGraceMs = 1000;

/**
 * Serves one HTTP invocation as the Functions host does when the worker answered `HttpUri` (the app
 * called `app.setup({ enableHttpStream: true })`): the client's request is forwarded to the
 * library's HTTP proxy, correlated by `x-ms-invocation-id` and with `x-forwarded-host`/`-proto`
 * (from which the library rebuilds the URL), while the invocation itself carries no body. The
 * proxy's response goes to the client as it comes, with back-pressure: status and headers when the
 * handler has returned, then the body chunk by chunk, and a slow client stops the reading from the
 * proxy. An invocation that fails before answering rejects (the caller answers 500); one that fails
 * while the body flows cuts the connection, so the client sees a broken transfer, never a short 200.
 */
export async function forwardToHttpProxy(req: IncomingMessage, res: ServerResponse, forwarding: ProxyForwarding): Promise<void> {
  const forwarded = http.request(new URL(req.url ?? "/", forwarding.httpUri), {
    method: req.method,
    headers: forwardedHeaders(req, forwarding.invocationId),
    agent: forwarding.agent,
  });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    forwarded.once("response", resolve);
    forwarded.once("error", reject);
  });
  req.pipe(forwarded);
  const settled = forwarding.invoke().then(
    () => ({ ok: true as const }),
    (error: unknown) => ({ ok: false as const, error }),
  );

  const first = await Promise.race([
    response.then(
      (proxyRes) => ({ proxyRes }),
      (error: unknown) => ({ proxyError: error }),
    ),
    settled.then((outcome) => ({ outcome })),
  ]);
  let proxyRes: IncomingMessage;
  if ("outcome" in first) {
    if (!first.outcome.ok) {
      forwarded.destroy();
      throw first.outcome.error;
    }
    const late = await Promise.race([response.catch(() => undefined), new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), responseGraceMs).unref())]);
    if (!late) {
      // The handler returned no HTTP response; the library then writes nothing to its proxy.
      forwarded.destroy();
      res.writeHead(204).end();
      return;
    }
    proxyRes = late;
  } else if ("proxyError" in first) {
    forwarded.destroy();
    throw new Error(`the worker's HTTP proxy (${forwarding.httpUri}) failed: ${errorText(first.proxyError)}`);
  } else {
    proxyRes = first.proxyRes;
  }

  res.writeHead(proxyRes.statusCode ?? 502, responseHeaders(proxyRes.headers));
  void settled.then((outcome) => {
    if (!outcome.ok) {
      forwarded.destroy();
      res.destroy();
    }
  });
  try {
    await pipeline(proxyRes, res);
  } catch {
    // The connection broke: the client went away, or the invocation failed and cut it. Its outcome says which.
    // (After a client went away the library goes on writing into the closed proxy response until the body ends.)
  }
  const outcome = await settled;
  if (!outcome.ok) throw outcome.error;
}

function forwardedHeaders(req: IncomingMessage, invocationId: string): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined && !hopByHop.has(name) && name !== "host") headers[name] = value;
  }
  headers["x-ms-invocation-id"] = invocationId;
  headers["x-forwarded-host"] = req.headers.host ?? "localhost";
  headers["x-forwarded-proto"] = "http";
  if (req.socket.remoteAddress) headers["x-forwarded-for"] = req.socket.remoteAddress;
  return headers;
}

function responseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !hopByHop.has(name)) out[name] = value;
  }
  return out;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

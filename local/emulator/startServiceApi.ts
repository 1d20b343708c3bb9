import { listen } from "../listen";
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import { isJsonObject, type Json, type JsonObject } from "../../shared/twin/json";
import { hubTimestamp } from "./Clock";
import { toAddress, type TwinAddress } from "./DeviceRegistry";
import type { IotHub } from "./IotHub";
import { hubErrors, IotHubError } from "./IotHubError";
import { parseTwinQuery } from "./parseTwinQuery";
import { runTwinQuery } from "./runTwinQuery";
import { parseSharedAccessSignature, verifySharedAccessSignature } from "./sharedAccessSignature";
import type { ThrottledOperation } from "./Throttle";

export interface ServiceApiOptions {
  key: string;
  cert: string;
  port?: number;
  host?: string;
}

export interface ServiceApi {
  server: Server;
  port: number;
  close(): Promise<void>;
}

const maxBodyBytes = 1024 * 1024;

// The body came from JSON.parse, so an object here is a JSON object.
const jsonObject = z.custom<JsonObject>((value) => isJsonObject(value as Json), "expected a JSON object");
const twinPatchSchema = z.object({
  tags: jsonObject.optional(),
  properties: z.object({ desired: jsonObject.optional(), reported: jsonObject.optional() }).optional(),
});
const querySchema = z.object({ query: z.string() });
const deviceSchema = z.object({
  status: z.enum(["enabled", "disabled"]).optional(),
  statusReason: z.string().nullable().optional(),
  authentication: z
    .object({
      type: z.string().optional(),
      symmetricKey: z.object({ primaryKey: z.string().nullish(), secondaryKey: z.string().nullish() }).nullish(),
    })
    .optional(),
});

/**
 * IoT Hub's service REST API over HTTPS, enough for azure-iothub's `Registry`: twins (GET, PATCH,
 * PUT, device and module), `POST /devices/query` with paging, device and module identity CRUD.
 * Every response is JSON; every request needs a service SAS signed with one of the hub's policies.
 */
export async function startServiceApi(hub: IotHub, options: ServiceApiOptions): Promise<ServiceApi> {
  const server = createServer({ key: options.key, cert: options.cert }, (req, res) => {
    readBody(req)
      .then((body) => handle(hub, req, res, body))
      .catch((error: unknown) => sendError(hub, res, error));
  });
  await listen(server, options.port, options.host);
  let closed: Promise<void> | null = null;
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        reject(new IotHubError(413, "RequestEntityTooLarge", `Request body larger than ${maxBodyBytes} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function handle(hub: IotHub, req: IncomingMessage, res: ServerResponse, rawBody: string): void {
  authorize(hub, req.headers.authorization);
  const url = new URL(req.url ?? "/", `https://${hub.hostName}`);
  const segments = url.pathname.split("/").filter((s) => s !== "").map(decodeSegment);
  const method = req.method ?? "GET";
  const ifMatch = header(req, "if-match");

  // /twins/{id}[/modules/{mid}]
  if (segments[0] === "twins" && (segments.length === 2 || (segments.length === 4 && segments[2] === "modules"))) {
    const address: TwinAddress = { deviceId: segments[1]!, moduleId: segments[3] ?? null };
    if (method === "GET") {
      throttle(hub, "twinRead");
      return sendTwin(res, hub.registry.getTwin(address));
    }
    if (method === "PATCH" || method === "PUT") {
      throttle(hub, "twinUpdate");
      const patch = parseJson(rawBody, twinPatchSchema);
      const twin = method === "PATCH" ? hub.registry.updateTwin(address, patch, ifMatch) : hub.registry.replaceTwin(address, patch, ifMatch);
      return sendTwin(res, twin);
    }
  }

  if (segments[0] === "devices" && segments[1] === "query" && segments.length === 2 && method === "POST") {
    throttle(hub, "query");
    const { query } = parseJson(rawBody, querySchema);
    const parsed = parseTwinQuery(query);
    const pageSizeHeader = header(req, "x-ms-max-item-count");
    const continuationToken = header(req, "x-ms-continuation");
    const page = runTwinQuery(parsed, hub.registry.twinDocuments(parsed.source), {
      ...(pageSizeHeader === undefined || !Number(pageSizeHeader) ? {} : { pageSize: Number(pageSizeHeader) }),
      ...(continuationToken === undefined || continuationToken === "" ? {} : { continuationToken }),
    });
    return send(res, 200, page.items, {
      "x-ms-item-type": page.itemType,
      ...(page.continuationToken === undefined ? {} : { "x-ms-continuation": page.continuationToken }),
    });
  }

  // /devices, /devices/{id}, /devices/{id}/modules[/{mid}]
  if (segments[0] === "devices") {
    if (segments.length === 1 && method === "GET") return send(res, 200, hub.registry.listDevices());
    if (segments.length === 3 && segments[2] === "modules" && method === "GET") {
      return send(res, 200, hub.registry.listModules(segments[1]!));
    }
    if (segments.length === 2 || (segments.length === 4 && segments[2] === "modules")) {
      const address = toAddress({ deviceId: segments[1]!, moduleId: segments[3] ?? null });
      if (method === "GET") return send(res, 200, hub.registry.getDevice(address));
      if (method === "DELETE") {
        hub.registry.deleteDevice(address, ifMatch);
        return send(res, 204, undefined);
      }
      if (method === "PUT") {
        const body = parseJson(rawBody, deviceSchema);
        const options = {
          ...(body.status === undefined ? {} : { status: body.status }),
          ...(body.statusReason === undefined ? {} : { statusReason: body.statusReason }),
          ...(body.authentication?.symmetricKey?.primaryKey ? { primaryKey: body.authentication.symmetricKey.primaryKey } : {}),
          ...(body.authentication?.symmetricKey?.secondaryKey ? { secondaryKey: body.authentication.symmetricKey.secondaryKey } : {}),
        };
        if (hub.registry.hasDevice(address) && ifMatch !== undefined) {
          return send(res, 200, hub.registry.updateDevice(address, options, ifMatch));
        }
        const created =
          address.moduleId === null
            ? hub.registry.createDevice(address.deviceId, options)
            : hub.registry.createModule(address.deviceId, address.moduleId, options);
        return send(res, 200, created);
      }
    }
  }
  throw new IotHubError(404, "NotFound", `The emulator does not implement ${method} ${url.pathname}`);
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw hubErrors.badRequest(`Malformed path segment '${segment}'`);
  }
}

function authorize(hub: IotHub, authorization: string | undefined): void {
  const fields = parseSharedAccessSignature(authorization);
  if (fields === null) throw hubErrors.unauthorized("Missing or malformed SharedAccessSignature in the Authorization header");
  const policy = fields.skn === undefined ? undefined : hub.policies.get(fields.skn);
  const sr = fields.sr.toLowerCase();
  const host = hub.hostName.toLowerCase();
  if (
    policy === undefined ||
    (sr !== host && !sr.startsWith(`${host}/`)) ||
    !verifySharedAccessSignature(fields, [policy.primaryKey, policy.secondaryKey], hub.authClock.now())
  ) {
    throw hubErrors.unauthorized("Unauthorized: the shared access signature is invalid or expired for this hub");
  }
}

function throttle(hub: IotHub, operation: ThrottledOperation): void {
  if (!hub.throttle.tryAcquire(operation)) {
    throw hubErrors.throttled(operation === "query" ? "Query" : operation === "twinRead" ? "TwinRead" : "TwinUpdate");
  }
}

function parseJson<T>(raw: string, schema: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw hubErrors.argumentInvalid("The request body is not valid JSON");
  }
  const result = schema.safeParse(value);
  if (!result.success) throw hubErrors.argumentInvalid(`The request body is invalid: ${z.prettifyError(result.error).replace(/\n/g, " ")}`);
  return result.data;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function sendTwin(res: ServerResponse, twin: JsonObject): void {
  send(res, 200, twin, { etag: `"${String(twin.etag)}"` });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(hub: IotHub, res: ServerResponse, error: unknown): void {
  const hubError = error instanceof IotHubError ? error : new IotHubError(500, "ServerError", "Internal error in the IoT Hub emulator");
  if (!(error instanceof IotHubError)) console.error("IoT Hub emulator: unexpected error", error);
  if (res.headersSent) return;
  send(res, hubError.status, hubError.toBody(randomUUID().replace(/-/g, ""), hubTimestamp(hub.clock.now())), {
    "iothub-errorcode": hubError.code,
  });
}

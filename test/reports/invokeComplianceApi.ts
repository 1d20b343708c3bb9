import { HttpRequest, HttpResponse, InvocationContext, type HttpHandler } from "@azure/functions";
import "../../functions/complianceApi";

// The functions complianceApi registered, captured by the '@azure/functions-core' stand-in
// (local/host/functionsCore.js, mapped by jest.config.js).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const core = require("@azure/functions-core") as {
  __state: { functions: Map<string, { metadata: RegisteredMetadata; callback: HttpHandler }> };
};

interface RegisteredMetadata {
  name: string;
  bindings: Record<string, { type: string; direction: string; route?: string; methods?: string[]; authLevel?: string }>;
}

export interface RegisteredRoute {
  name: string;
  route: string;
  methods: string[];
  authLevel: string;
  handler: HttpHandler;
}

export function registeredRoutes(): RegisteredRoute[] {
  return [...core.__state.functions.values()].flatMap(({ metadata, callback }) => {
    const trigger = Object.values(metadata.bindings).find((b) => b.type === "httpTrigger");
    if (!trigger?.route) return [];
    return [{ name: metadata.name, route: trigger.route, methods: trigger.methods ?? [], authLevel: trigger.authLevel ?? "", handler: callback }];
  });
}

/** Matches `/api/<route>` against the registered route templates (`{name}` = one segment). */
export function matchRoute(method: string, pathname: string): { route: RegisteredRoute; params: Record<string, string> } | undefined {
  const segments = pathname.replace(/^\/api\//, "").split("/");
  for (const route of registeredRoutes()) {
    if (!route.methods.includes(method)) continue;
    const template = route.route.split("/");
    if (template.length !== segments.length) continue;
    const params: Record<string, string> = {};
    const ok = template.every((t, i) => {
      const s = segments[i] ?? "";
      const m = /^\{(\w+)\}$/.exec(t);
      if (m?.[1]) {
        params[m[1]] = decodeURIComponent(s);
        return s.length > 0;
      }
      return t === s;
    });
    if (ok) return { route, params };
  }
  return undefined;
}

/** Calls the registered handler for `method url` (url like `/api/compliance/summary?state=failed`) as the host would. */
export async function invokeComplianceApi(method: string, url: string): Promise<HttpResponse> {
  const full = new URL(url, "http://localhost");
  const match = matchRoute(method, full.pathname);
  if (!match) return new HttpResponse({ status: 404 });
  const request = new HttpRequest({ method, url: full.toString(), params: match.params });
  const context = new InvocationContext({ functionName: match.route.name, invocationId: "test" });
  const result = await match.route.handler(request, context);
  return result instanceof HttpResponse ? result : new HttpResponse(result ?? {});
}

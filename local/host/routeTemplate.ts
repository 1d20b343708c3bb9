/**
 * ASP.NET-style route templates as Azure Functions HTTP triggers use them: literal segments
 * (case-insensitive), `{name}`, optional `{name?}`, constrained `{name:int}` / `{name:alpha}` /
 * `{name:guid}` / `{name:bool}`, and a catch-all last `{*rest}`. Other constraints are accepted
 * and not enforced.
 */
export interface RouteTemplate {
  template: string;
  /** Orders candidate routes: literal segments first, as ASP.NET routing prefers them. */
  precedence: number[];
  match(path: string): Record<string, string> | undefined;
}

type Segment =
  | { kind: "literal"; text: string }
  | { kind: "param"; name: string; optional: boolean; catchAll: boolean; constraint: string | undefined };

const constraints: Record<string, RegExp> = {
  int: /^-?\d+$/,
  long: /^-?\d+$/,
  alpha: /^[a-z]+$/i,
  bool: /^(true|false)$/i,
  guid: /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i,
  double: /^-?\d+(\.\d+)?$/,
  decimal: /^-?\d+(\.\d+)?$/,
};

export function compileRoute(template: string): RouteTemplate {
  const segments: Segment[] = trimSlashes(template)
    .split("/")
    .filter((s) => s !== "")
    .map((raw) => {
      const param = /^\{(\*{1,2})?([A-Za-z_][\w]*)(?::([^}?=]+))?(\?)?\}$/.exec(raw);
      if (!param) {
        if (raw.includes("{")) throw new Error(`route "${template}": segment "${raw}" mixes text and parameters, which the local host does not support`);
        return { kind: "literal", text: raw.toLowerCase() };
      }
      return { kind: "param", name: param[2]!, catchAll: param[1] !== undefined, optional: param[4] === "?", constraint: param[3]?.split(":")[0]?.split("(")[0] };
    });
  const precedence = segments.map((s) => (s.kind === "literal" ? 0 : s.catchAll ? 3 : s.constraint ? 1 : 2));
  return {
    template,
    precedence,
    match(path) {
      const parts = trimSlashes(path).split("/").filter((s) => s !== "");
      const params: Record<string, string> = {};
      for (let i = 0; i < segments.length; i++) {
        const segment = segments[i]!;
        const part = parts[i];
        if (segment.kind === "literal") {
          if (part === undefined || safeDecode(part).toLowerCase() !== segment.text) return undefined;
          continue;
        }
        if (segment.catchAll) {
          params[segment.name] = parts.slice(i).map(safeDecode).join("/");
          return params;
        }
        if (part === undefined) {
          if (segment.optional) return params;
          return undefined;
        }
        const value = safeDecode(part);
        const rule = segment.constraint ? constraints[segment.constraint.toLowerCase()] : undefined;
        if (rule && !rule.test(value)) return undefined;
        params[segment.name] = value;
      }
      return parts.length === segments.length ? params : undefined;
    },
  };
}

/** Lower sorts first: compare precedence segment by segment. */
export function comparePrecedence(a: RouteTemplate, b: RouteTemplate): number {
  for (let i = 0; i < Math.max(a.precedence.length, b.precedence.length); i++) {
    const d = (a.precedence[i] ?? -1) - (b.precedence[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

function trimSlashes(s: string): string {
  return s.replace(/^\/+|\/+$/g, "");
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

import { z } from "zod";
import { storableText } from "../twin/storableText";
import { cursorParam } from "./deviceCursor";
import { complianceStates, type ComplianceState } from "./complianceStates";
import { invalidParamsProblem, type InvalidParam, type Problem } from "./Problem";

/** Filters every report accepts. `tags` are matched against the device's twin tags. */
export interface ReportFilters {
  state?: ComplianceState;
  property?: string;
  tags: TagFilter[];
}

/** `tag.<dot.path>=<value>`: the tag at `path` equals `value` (as a string, or as the number/boolean it spells). */
export interface TagFilter {
  path: string[];
  value: string;
}

export const maxTagFilters = 10;
const maxParamNameLength = 256;
const printable = /^[^\p{Cc}]+$/u;
/** Text a parameter may carry into a query: what PostgreSQL can hold (no NUL, no lone surrogate). */
export const storableParamText = (schema: z.ZodString) =>
  schema.refine(storableText, "must not contain NUL or an unpaired surrogate (invalid Unicode)");

// Each parameter's `meta` (description, examples) is what shared/reports/openApiDocument.ts publishes
// with the JSON Schema zod derives from it (io "input": the query string's text, before transforms).
export const stateParam = z.enum(complianceStates).meta({
  description: "With `property`: that property's state. Otherwise, on device lists the device's state, on property records the record's state.",
  examples: ["stale"],
});
export const propertyParam = storableParamText(
  z.string().min(1, "must not be empty").max(512, "must be at most 512 characters").regex(printable, "must be a desired property path (printable characters)"),
).meta({ description: "A desired property path (dot path).", examples: ["firmware.version"] });
export const limitParam = z
  .string()
  .regex(/^(?:[1-9]\d{0,2}|1000)$/, "must be an integer from 1 to 1000")
  .transform(Number)
  .pipe(z.number().int().min(1, "must be an integer from 1 to 1000").max(1000, "must be an integer from 1 to 1000"))
  .meta({ description: "Page size, an integer from 1 to 1000 (default 100).", examples: ["100"] });
const sinceUnits = { s: 1, m: 60, h: 3600, d: 86400 } as const;
export const maxSinceSeconds = 90 * 86400;
/** A look-back window such as `30m`, `24h`, `7d` (at most 90 days), as seconds. */
export const sinceParam = z
  .string()
  .regex(/^\d{1,7}[smhd]$/, "must be a duration such as 90s, 30m, 24h or 7d")
  .transform((s) => Number(s.slice(0, -1)) * sinceUnits[s.slice(-1) as keyof typeof sinceUnits])
  .pipe(z.number().int().min(1, "must be at least 1s").max(maxSinceSeconds, "must be at most 90d"))
  .meta({ description: "Time-to-compliance window, e.g. 30m, 24h (default), 7d; at most 90d.", examples: ["24h"] });
const tagSegment = storableParamText(z.string().min(1, "has an empty path segment").max(128, "has a path segment over 128 characters").regex(printable, "must be printable"));
export const tagValue = storableParamText(z.string().max(256, "must be at most 256 characters")).meta({
  description: `Any number of \`tag.<dot.path>=<value>\` (at most ${maxTagFilters}): the twin tag at that path equals the value (as a string, or as the number/boolean it spells).`,
  examples: ["paris"],
});

type ParamSchemas = Record<string, z.ZodType<unknown, string>>;
type Parsed<S extends ParamSchemas> = { [K in keyof S]?: z.output<S[K]> };

export type QueryResult<T> = { ok: true; value: T } | { ok: false; problem: Problem };

/**
 * Validates a query string against `schemas` (each parameter at most once), plus `tag.<path>` filters
 * when `tags` is set. Unknown parameters are rejected so a typo is not silently ignored; `code` (the
 * Functions key) is allowed everywhere.
 */
export function parseQuery<S extends ParamSchemas>(
  query: URLSearchParams,
  schemas: S,
  options: { tags?: boolean } = {},
): QueryResult<Parsed<S> & { tags: TagFilter[] }> {
  const invalid: InvalidParam[] = [];
  const seen = new Set<string>();
  const value: Record<string, unknown> = {};
  const tags: TagFilter[] = [];
  for (const [fullName, raw] of query) {
    // A name is echoed back in the problem: an oversized one is cut, so the answer stays small.
    const name = fullName.length > maxParamNameLength ? `${fullName.slice(0, maxParamNameLength)}…` : fullName;
    if (fullName.length > maxParamNameLength) {
      invalid.push({ name, reason: `is not a parameter of this route (names are at most ${maxParamNameLength} characters)` });
      continue;
    }
    if (seen.has(name)) {
      invalid.push({ name, reason: "must be given at most once" });
      continue;
    }
    seen.add(name);
    if (name === "code") continue;
    if (options.tags && name.startsWith("tag.")) {
      const segments = name.slice(4).split(".");
      const issues = [
        ...segments.flatMap((s) => tagSegment.safeParse(s).error?.issues ?? []),
        ...(tagValue.safeParse(raw).error?.issues ?? []),
      ];
      if (segments.length > 8) invalid.push({ name, reason: "tag path must have at most 8 segments" });
      else if (issues[0]) invalid.push({ name, reason: issues[0].message });
      else tags.push({ path: segments, value: raw });
      continue;
    }
    const schema = schemas[name];
    if (!schema) {
      invalid.push({ name, reason: `is not a parameter of this route (expected ${[...Object.keys(schemas), ...(options.tags ? ["tag.<path>"] : [])].join(", ")})` });
      continue;
    }
    const parsed = schema.safeParse(raw);
    if (parsed.success) value[name] = parsed.data;
    else invalid.push({ name, reason: parsed.error.issues[0]?.message ?? "is invalid" });
  }
  if (tags.length > maxTagFilters) invalid.push({ name: "tag.*", reason: `at most ${maxTagFilters} tag filters` });
  if (invalid.length > 0) return { ok: false, problem: invalidParamsProblem(invalid) };
  return { ok: true, value: { ...(value as Parsed<S>), tags } };
}

/** `resyncNeeded=true|false`: twins flagged (or not) for the resync queue (device list). */
export const resyncNeededParam = z
  .enum(["true", "false"], "must be true or false")
  .transform((v) => v === "true")
  .meta({ description: "Only twins flagged (true) or not flagged (false) for the resync queue.", examples: ["true"] });

/** IoT Hub device and module ids: up to 128 printable ASCII characters. */
export const twinIdParam = z.string().min(1, "must not be empty").max(128, "must be at most 128 characters").regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces");
const moduleIdParam = twinIdParam.meta({ description: "For a module twin.", examples: ["m1"] });

/** The filters shared by summary, device list and CSV export. */
export const filterSchemas = { state: stateParam, property: propertyParam };

/**
 * The query parameters of each compliance route: what complianceRoutes.ts validates and what
 * openApiDocument.ts documents (`tags`: the route also takes `tag.<path>` filters).
 */
export const routeQueries = {
  summary: { params: { ...filterSchemas, since: sinceParam }, tags: true },
  devices: {
    params: {
      ...filterSchemas,
      limit: limitParam,
      cursor: cursorParam.meta({ description: "`nextCursor` of the previous page." }),
      q: twinIdParam.meta({ description: "Device id prefix.", examples: ["dev-"] }),
      resyncNeeded: resyncNeededParam,
    },
    tags: true,
  },
  devicesCsv: { params: filterSchemas, tags: true },
  deviceDetail: { params: { moduleId: moduleIdParam }, tags: false },
  repush: { params: { moduleId: moduleIdParam }, tags: false },
} as const satisfies Record<string, { params: ParamSchemas; tags: boolean }>;

export function toFilters(value: { state?: ComplianceState; property?: string; tags: TagFilter[] }): ReportFilters {
  return {
    tags: value.tags,
    ...(value.state !== undefined ? { state: value.state } : {}),
    ...(value.property !== undefined ? { property: value.property } : {}),
  };
}

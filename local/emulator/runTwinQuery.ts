import { isJsonObject, type Json, type JsonObject } from "../../shared/twin/json";
import { hubErrors } from "./IotHubError";
import type { QueryExpression, TwinQuery } from "./parseTwinQuery";

export interface TwinQueryPage {
  items: JsonObject[];
  /** `Twin` for `SELECT *`, `Raw` for projections and aggregates (the `x-ms-item-type` header). */
  itemType: "Twin" | "Raw";
  /** Present when more results follow. */
  continuationToken?: string;
}

export interface RunTwinQueryOptions {
  /** Items per page (`x-ms-max-item-count`); default 100, at most 1000. */
  pageSize?: number;
  continuationToken?: string;
}

export const defaultPageSize = 100;
export const maxPageSize = 1000;

/**
 * Evaluates a parsed query over twin documents (as GET /twins returns them) and returns one page.
 * Conditions are three-valued like IoT Hub's: comparing a missing value, an object or values of
 * different types is "undefined", and only rows whose condition is exactly `true` are kept.
 */
export function runTwinQuery(query: TwinQuery, twins: readonly JsonObject[], options: RunTwinQueryOptions = {}): TwinQueryPage {
  const matching = query.where === undefined ? twins : twins.filter((twin) => evaluate(query.where!, twin) === true);
  const limited = query.top === undefined ? matching : matching.slice(0, query.top);
  const select = query.select;
  const rows: readonly JsonObject[] = select.kind === "count" ? [{ [select.alias]: limited.length }] : limited;

  const pageSize = Math.min(maxPageSize, Math.max(1, Math.floor(options.pageSize ?? defaultPageSize)));
  const start = options.continuationToken === undefined ? 0 : decodeContinuation(options.continuationToken);
  // Only the page is copied or projected: paging through N twins stays O(N) per page, not O(N) copies.
  const page = rows.slice(start, start + pageSize);
  const items = select.kind === "count" ? page : select.kind === "all" ? page.map((t) => structuredClone(t)) : page.map((twin) => project(twin, select.fields));
  const next = start + pageSize;
  return {
    items,
    itemType: select.kind === "all" ? "Twin" : "Raw",
    ...(next < rows.length ? { continuationToken: encodeContinuation(next) } : {}),
  };
}

function project(twin: JsonObject, fields: Array<{ path: string[]; alias: string }>): JsonObject {
  const out: JsonObject = {};
  for (const field of fields) {
    const value = lookup(twin, field.path);
    if (value !== undefined) out[field.alias] = structuredClone(value);
  }
  return out;
}

function lookup(twin: JsonObject, path: string[]): Json | undefined {
  let current: Json | undefined = twin;
  for (const segment of path) {
    if (!isJsonObject(current) || !Object.prototype.hasOwnProperty.call(current, segment)) return undefined;
    current = current[segment];
  }
  return current;
}

type Truth = boolean | undefined;
type Primitive = string | number | boolean | null;

function evaluate(expression: QueryExpression, twin: JsonObject): Json | undefined {
  switch (expression.kind) {
    case "literal":
      return expression.value;
    case "path":
      return lookup(twin, expression.path);
    case "isDefined":
      return lookup(twin, expression.path) !== undefined;
    case "not": {
      const value = truth(evaluate(expression.operand, twin));
      return value === undefined ? undefined : !value;
    }
    case "and": {
      const left = truth(evaluate(expression.left, twin));
      const right = truth(evaluate(expression.right, twin));
      if (left === false || right === false) return false;
      return left === true && right === true ? true : undefined;
    }
    case "or": {
      const left = truth(evaluate(expression.left, twin));
      const right = truth(evaluate(expression.right, twin));
      if (left === true || right === true) return true;
      return left === false && right === false ? false : undefined;
    }
    case "in": {
      const operand = evaluate(expression.operand, twin);
      if (!isPrimitive(operand)) return undefined;
      const found = expression.values.some((v) => isPrimitive(v) && typeof v === typeof operand && v === operand);
      return expression.negated ? !found : found;
    }
    case "compare":
      return compare(expression.op, evaluate(expression.left, twin), evaluate(expression.right, twin));
  }
}

/** Any value other than boolean true/false is "undefined" as a condition. */
function truth(value: Json | undefined): Truth {
  return typeof value === "boolean" ? value : undefined;
}

function isPrimitive(value: Json | undefined): value is Primitive {
  return value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean";
}

function compare(op: string, left: Json | undefined, right: Json | undefined): Truth {
  if (!isPrimitive(left) || !isPrimitive(right)) return undefined;
  if (left === null || right === null) {
    if (op === "=") return left === right;
    if (op === "!=") return left !== right;
    return undefined;
  }
  if (typeof left !== typeof right) return undefined;
  switch (op) {
    case "=":
      return left === right;
    case "!=":
      return left !== right;
  }
  if (typeof left === "boolean") return undefined;
  switch (op) {
    case "<":
      return left < right;
    case ">":
      return left > right;
    case "<=":
      return left <= right;
    case ">=":
      return left >= right;
    default:
      return undefined;
  }
}

function encodeContinuation(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset }), "utf8").toString("base64");
}

function decodeContinuation(token: string): number {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(token, "base64").toString("utf8"));
    if (isJsonObject(parsed as Json) && typeof (parsed as JsonObject).o === "number") {
      const o = (parsed as JsonObject).o as number;
      if (Number.isInteger(o) && o >= 0) return o;
    }
  } catch {
    // fall through to the refusal
  }
  throw hubErrors.badRequest("Invalid continuation token: pass back the x-ms-continuation value of the previous page unchanged");
}

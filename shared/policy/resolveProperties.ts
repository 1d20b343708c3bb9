import { isJsonObject, type Json, type JsonObject } from "../twin/json";
import { isSystemKey } from "../twin/paths";
import type { CompareMode } from "./compareMode";
import type { Policy, PolicyRule } from "./Policy";

/** One desired property as the policy sees it: where it is desired, where it is reported, how to compare. */
export interface ResolvedProperty {
  path: string;
  segments: string[];
  reportedPath: string;
  reportedSegments: string[];
  compare: Exclude<CompareMode, "ignore">;
  staleAfterMs: number;
  repushDrift: boolean;
  desired: Json;
}

/**
 * Walks the desired section and returns its properties: a path matched by a rule is one property
 * whatever it holds (value or object); elsewhere every leaf (scalar or array) is a property under
 * the default rule (same path, `equals`). `$` keys and the IoT Plug and Play component marker `__t`
 * are never properties; rules with `compare: "ignore"` hide what they match.
 */
export function resolveProperties(desired: JsonObject, policy: Policy): ResolvedProperty[] {
  const out: ResolvedProperty[] = [];
  const walk = (node: JsonObject, prefix: string[]): void => {
    for (const [key, value] of Object.entries(node)) {
      if (isSystemKey(key) || key === "__t") continue;
      const segments = [...prefix, key];
      const match = matchRule(policy.rules, segments);
      if (match) {
        if (match.rule.compare !== "ignore") out.push(property(segments, value, match.rule, match.captures));
      } else if (isJsonObject(value)) {
        walk(value, segments);
      } else {
        out.push(property(segments, value, undefined, [], policy.staleAfterMs));
      }
    }
  };
  walk(desired, []);
  return out;
}

function property(segments: string[], desired: Json, rule: PolicyRule | undefined, captures: string[], defaultStaleAfterMs = 0): ResolvedProperty {
  const reportedSegments = rule?.reported ? rule.reported.map((s) => (/^\$\d+$/.test(s) ? (captures[Number(s.slice(1)) - 1] ?? s) : s)) : segments;
  return {
    path: segments.join("."),
    segments,
    reportedPath: reportedSegments.join("."),
    reportedSegments,
    compare: (rule?.compare ?? "equals") as Exclude<CompareMode, "ignore">,
    staleAfterMs: rule?.staleAfterMs ?? defaultStaleAfterMs,
    repushDrift: rule?.repushDrift ?? true,
    desired,
  };
}

/** The first rule whose pattern matches `segments` exactly, with what its `*`s matched. */
export function matchRule(rules: readonly PolicyRule[], segments: readonly string[]): { rule: PolicyRule; captures: string[] } | undefined {
  for (const rule of rules) {
    if (rule.desired.length !== segments.length) continue;
    const captures: string[] = [];
    let ok = true;
    for (let i = 0; i < segments.length && ok; i++) {
      const want = rule.desired[i];
      const got = segments[i] as string;
      if (want === "*") captures.push(got);
      else if (want !== got) ok = false;
    }
    if (ok) return { rule, captures };
  }
  return undefined;
}

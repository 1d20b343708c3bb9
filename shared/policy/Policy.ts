import { z } from "zod";
import { COMPARE_MODES, type CompareMode } from "./compareMode";
import { MAX_DURATION_MS, parseDuration } from "./parseDuration";

/**
 * The compliance policy file: how each device reports each desired property.
 *
 *   { "staleAfter": "10m",
 *     "rules": [ { "desired": "components.*.channel", "reported": "radio.$1.channel", "compare": "looseEquals" } ] }
 *
 * Rules are tried in file order; the first whose `desired` pattern matches a desired path wins.
 * `*` matches exactly one segment; `$1…$n` in `reported` insert what the `*`s matched.
 */
export interface PolicyRule {
  /** Pattern segments of the desired path (`*` = any one segment). */
  desired: readonly string[];
  /** Template segments of the reported path (`$n` = the n-th `*`); undefined = same as desired. */
  reported: readonly string[] | undefined;
  compare: CompareMode;
  staleAfterMs: number;
  /** Whether the re-push timer may re-push a drifted property (default true). */
  repushDrift: boolean;
}

export interface Policy {
  staleAfterMs: number;
  rules: readonly PolicyRule[];
}

export class PolicyError extends Error {
  override readonly name = "PolicyError";
  readonly code = "INVALID_POLICY";
}

const DEFAULT_STALE_AFTER = "10m";

/** How long a desired value may wait for its report: above zero, and short enough to offset any stored time. */
const STALE_AFTER_BOUNDS = { minMs: 1, maxMs: MAX_DURATION_MS };

const duration = z
  .string()
  .max(64, "must be a duration such as 10m or PT10M")
  .superRefine((text, ctx) => {
    try {
      parseDuration(text, STALE_AFTER_BOUNDS);
    } catch (error) {
      ctx.addIssue({ code: "custom", message: (error as Error).message });
    }
  });

const segmentText = /^[^.$\s][^.\s]*$/;
// Twin keys are at most 1 KB and nested at most 10 deep: no real path is longer than this.
const MAX_PATH_LENGTH = 10 * 1024 + 9;
const pattern = z
  .string()
  .min(1, "must not be empty")
  .max(MAX_PATH_LENGTH, `must be at most ${MAX_PATH_LENGTH} characters (10 keys of 1 KB)`)
  .refine((p) => p.split(".").every((s) => s === "*" || segmentText.test(s)), {
    message: "must be dot-separated segments (no empty segment, none starting with $); * matches one segment",
  });
const template = z
  .string()
  .min(1, "must not be empty")
  .max(MAX_PATH_LENGTH, `must be at most ${MAX_PATH_LENGTH} characters (10 keys of 1 KB)`)
  .refine((p) => p.split(".").every((s) => /^\$\d+$/.test(s) || segmentText.test(s)), {
    message: "must be dot-separated segments or $1…$n placeholders",
  });

const ruleSchema = z
  .object({
    desired: pattern,
    reported: template.optional(),
    compare: z.enum(COMPARE_MODES).default("equals"),
    staleAfter: duration.optional(),
    repushDrift: z.boolean().default(true),
  })
  .strict()
  .superRefine((rule, ctx) => {
    const wildcards = rule.desired.split(".").filter((s) => s === "*").length;
    for (const segment of rule.reported?.split(".") ?? []) {
      const n = /^\$(\d+)$/.exec(segment)?.[1];
      if (n !== undefined && (Number(n) < 1 || Number(n) > wildcards)) {
        ctx.addIssue({ code: "custom", path: ["reported"], message: `${segment} has no matching * in "${rule.desired}" (it has ${wildcards})` });
      }
    }
  });

const policySchema = z
  .object({
    staleAfter: duration.default(DEFAULT_STALE_AFTER),
    rules: z.array(ruleSchema).max(1000, "must have at most 1000 rules").default([]),
  })
  .strict();

/** The policy used when none is configured: every desired leaf compared with `equals` at the same path. */
export const DEFAULT_POLICY: Policy = { staleAfterMs: parseDuration(DEFAULT_STALE_AFTER, STALE_AFTER_BOUNDS), rules: [] };

/** Validates a parsed policy document; throws PolicyError naming the offending field. */
export function parsePolicy(document: unknown): Policy {
  const result = policySchema.safeParse(document);
  if (!result.success) {
    const issues = result.error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
    throw new PolicyError(`invalid policy: ${issues.join("; ")}`);
  }
  const { staleAfter, rules } = result.data;
  const staleAfterMs = parseDuration(staleAfter, STALE_AFTER_BOUNDS);
  return {
    staleAfterMs,
    rules: rules.map((rule) => ({
      desired: rule.desired.split("."),
      reported: rule.reported?.split("."),
      compare: rule.compare,
      staleAfterMs: rule.staleAfter === undefined ? staleAfterMs : parseDuration(rule.staleAfter, STALE_AFTER_BOUNDS),
      repushDrift: rule.repushDrift,
    })),
  };
}

/** Parses policy JSON text; throws PolicyError for bad JSON or a bad field. */
export function parsePolicyText(text: string): Policy {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new PolicyError(`invalid policy: not JSON (${(error as Error).message})`);
  }
  return parsePolicy(document);
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "policy";
  return path.reduce<string>((out, key) => (typeof key === "number" ? `${out}[${key}]` : `${out}.${String(key)}`), "policy");
}

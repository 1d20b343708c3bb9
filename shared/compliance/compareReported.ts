import { isJsonObject, ownValue, type Json } from "../twin/json";

/** Outcome of comparing one reported value with its desired value, before history is considered. */
export type Verdict = "compliant" | "failed" | "notYet";

/**
 * `equals`: reported deep-equals desired; for objects every desired key must be equal in reported
 * (extra reported keys allowed, `$` keys ignored); arrays compare element by element.
 * `loose` compares scalars as strings (`"68"` = `68`, `"true"` = `true`).
 */
export function containsDesired(desired: Json, reported: Json | undefined, loose = false, ignoreKeys: ReadonlySet<string> = NO_KEYS): boolean {
  if (reported === undefined) return false;
  if (isJsonObject(desired)) {
    if (!isJsonObject(reported)) return false;
    for (const [key, value] of Object.entries(desired)) {
      if (key.startsWith("$") || ignoreKeys.has(key)) continue;
      if (!containsDesired(value, ownValue(reported, key), loose)) return false;
    }
    return true;
  }
  if (Array.isArray(desired)) {
    return Array.isArray(reported) && reported.length === desired.length && desired.every((item, i) => deepEquals(item, reported[i], loose));
  }
  if (desired === reported) return true;
  return loose && !isJsonObject(reported) && !Array.isArray(reported) && String(desired) === String(reported);
}

function deepEquals(a: Json, b: Json | undefined, loose: boolean): boolean {
  if (isJsonObject(a)) {
    if (!isJsonObject(b)) return false;
    const keys = Object.keys(a).filter((k) => !k.startsWith("$"));
    const otherKeys = Object.keys(b).filter((k) => !k.startsWith("$"));
    return keys.length === otherKeys.length && keys.every((k) => deepEquals(a[k] as Json, ownValue(b, k), loose));
  }
  return containsDesired(a, b, loose);
}

const NO_KEYS: ReadonlySet<string> = new Set();
const STATUS_KEYS: ReadonlySet<string> = new Set(["status"]);
const SUCCESS = new Set(["success", "succeeded", "ok", "done", "applied"]);
const FAILURE = new Set(["error", "failed", "failure", "rejected"]);

/**
 * IoT Plug and Play writable-property acknowledgement `{value, ac, av, ad?}`: compliant when `av`
 * has reached the desired version and `ac` is 2xx other than 202 (in progress); failed when `av`
 * has reached it and `ac` >= 400; otherwise not yet.
 */
export function ackVerdict(reported: Json | undefined, desiredVersion: number): Verdict {
  if (!isJsonObject(reported)) return "notYet";
  const ac = ownValue(reported, "ac");
  const av = ownValue(reported, "av");
  if (typeof ac !== "number" || typeof av !== "number" || av < desiredVersion) return "notYet";
  if (ac >= 200 && ac <= 299 && ac !== 202) return "compliant";
  if (ac >= 400) return "failed";
  return "notYet";
}

/**
 * A reported object with a `status` string: success words ⇒ compliant when the desired object's
 * keys are equal in reported (ignoring `status`); failure words ⇒ failed; anything else ⇒ not yet.
 */
export function statusVerdict(desired: Json, reported: Json | undefined): Verdict {
  const reportedStatus = isJsonObject(reported) ? ownValue(reported, "status") : undefined;
  if (typeof reportedStatus !== "string") return "notYet";
  const status = reportedStatus.toLowerCase();
  if (FAILURE.has(status)) return "failed";
  if (!SUCCESS.has(status)) return "notYet";
  return containsDesired(desired, reported, false, STATUS_KEYS) ? "compliant" : "notYet";
}

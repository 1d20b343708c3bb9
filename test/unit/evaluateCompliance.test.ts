import { recordStateAt, type ComplianceState } from "../../shared/compliance/ComplianceState";
import { evaluateCompliance } from "../../shared/compliance/evaluateCompliance";
import type { PropertyRecord } from "../../shared/compliance/PropertyRecord";
import { parsePolicy } from "../../shared/policy/Policy";
import type { JsonObject } from "../../shared/twin/json";
import type { Twin } from "../../shared/twin/Twin";

const T0 = "2026-01-01T00:00:00.000Z";
const at = (minutes: number): string => new Date(Date.parse(T0) + minutes * 60_000).toISOString();

function twin(desired: JsonObject, reported: JsonObject, desiredVersion = 2, lastUpdated = T0): Twin {
  const meta = (node: JsonObject): JsonObject =>
    Object.fromEntries([
      ["$lastUpdated", lastUpdated],
      ["$lastUpdatedVersion", desiredVersion],
      ...Object.entries(node).map(([k, v]) => [k, typeof v === "object" && v !== null && !Array.isArray(v) ? meta(v as JsonObject) : { $lastUpdated: lastUpdated, $lastUpdatedVersion: desiredVersion }]),
    ]);
  return { deviceId: "d1", moduleId: null, version: 10, tags: {}, desired: { ...desired, $metadata: meta(desired), $version: desiredVersion }, reported: { ...reported, $version: 5 } };
}

const policy = parsePolicy({
  staleAfter: "10m",
  rules: [
    { desired: "climate.max", reported: "maxTemperature" },
    { desired: "channel", compare: "looseEquals" },
    { desired: "target", compare: "ack" },
    { desired: "telemetry", compare: "status" },
  ],
});

function stateOf(t: Twin, path: string, previous = new Map<string, PropertyRecord>(), now = at(1)): string | undefined {
  return evaluateCompliance(t, policy, previous, now).records.find((r) => r.path === path)?.state;
}

describe("evaluateCompliance: compare modes", () => {
  test.each<[string, JsonObject, JsonObject, string, string]>([
    ["equals: same value", { fanOn: true }, { fanOn: true }, "fanOn", "compliant"],
    ["equals: different value", { fanOn: true }, { fanOn: false }, "fanOn", "pending"],
    ["equals: string vs number is not equal", { level: 3 }, { level: "3" }, "level", "pending"],
    ["equals: reported at the mapped path", { climate: { max: 76 } }, { maxTemperature: 76 }, "climate.max", "compliant"],
    ["equals: arrays element by element", { list: [1, 2] }, { list: [1, 2] }, "list", "compliant"],
    ["equals: arrays of another length", { list: [1, 2] }, { list: [1, 2, 3] }, "list", "pending"],
    ["looseEquals: number and string", { channel: 6 }, { channel: "6" }, "channel", "compliant"],
    ["looseEquals: boolean and string", { channel: true }, { channel: "true" }, "channel", "compliant"],
    ["looseEquals: still different", { channel: 6 }, { channel: "7" }, "channel", "pending"],
    ["reported missing is pending", { fanOn: true }, {}, "fanOn", "pending"],
    ["ack: accepted at the desired version", { target: 21 }, { target: { value: 21, ac: 200, av: 2 } }, "target", "compliant"],
    ["ack: a newer av also counts", { target: 21 }, { target: { value: 21, ac: 200, av: 3 } }, "target", "compliant"],
    ["ack: an older av is pending", { target: 21 }, { target: { value: 20, ac: 200, av: 1 } }, "target", "pending"],
    ["ack: 202 is in progress", { target: 21 }, { target: { value: 21, ac: 202, av: 2 } }, "target", "pending"],
    ["ack: 400 is failed", { target: 21 }, { target: { value: 20, ac: 400, av: 2, ad: "out of range" } }, "target", "failed"],
    ["ack: 500 is failed", { target: 21 }, { target: { value: 20, ac: 500, av: 2 } }, "target", "failed"],
    ["ack: a plain value is pending", { target: 21 }, { target: 21 }, "target", "pending"],
    ["status: success with equal keys", { telemetry: { every: "5m" } }, { telemetry: { every: "5m", status: "Success" } }, "telemetry", "compliant"],
    ["status: applied (any case)", { telemetry: { every: "5m" } }, { telemetry: { every: "5m", status: "APPLIED" } }, "telemetry", "compliant"],
    ["status: success but other keys", { telemetry: { every: "5m" } }, { telemetry: { every: "1m", status: "success" } }, "telemetry", "pending"],
    ["status: error is failed", { telemetry: { every: "5m" } }, { telemetry: { status: "error" } }, "telemetry", "failed"],
    ["status: rejected is failed", { telemetry: { every: "5m" } }, { telemetry: { status: "Rejected" } }, "telemetry", "failed"],
    ["status: in progress is pending", { telemetry: { every: "5m" } }, { telemetry: { every: "5m", status: "downloading" } }, "telemetry", "pending"],
    ["status: no status is pending", { telemetry: { every: "5m" } }, { telemetry: { every: "5m" } }, "telemetry", "pending"],
  ])("%s", (_name, desired, reported, path, expected) => {
    expect(stateOf(twin(desired, reported), path)).toBe(expected);
  });

  test("equals on objects: every desired key equal, extra reported keys and $ keys ignored", () => {
    const p = parsePolicy({ rules: [{ desired: "cfg" }] });
    const t = twin({ cfg: { a: 1, b: { c: 2 } } }, { cfg: { a: 1, b: { c: 2, extra: true }, more: 1, $x: 0 } });
    expect(evaluateCompliance(t, p, new Map(), at(1)).records[0]?.state).toBe("compliant");
    const t2 = twin({ cfg: { a: 1, b: { c: 2 } } }, { cfg: { a: 1, b: {} } });
    expect(evaluateCompliance(t2, p, new Map(), at(1)).records[0]?.state).toBe("pending");
  });
});

describe("evaluateCompliance: history-dependent states", () => {
  test("a pending record becomes stale once desired is older than staleAfter", () => {
    const t = twin({ fanOn: true }, {});
    expect(stateOf(t, "fanOn", undefined, at(9))).toBe("pending");
    expect(stateOf(t, "fanOn", undefined, at(10))).toBe("stale");
  });

  test("a rule's own staleAfter wins over the policy's", () => {
    const p = parsePolicy({ staleAfter: "1h", rules: [{ desired: "fanOn", staleAfter: "30s" }] });
    expect(evaluateCompliance(twin({ fanOn: true }, {}), p, new Map(), at(1)).records[0]?.state).toBe("stale");
  });

  test("a compliant record whose reported value moves away at the same desired version is drifted", () => {
    const first = evaluateCompliance(twin({ fanOn: true }, { fanOn: true }), policy, new Map(), at(1));
    const previous = new Map(first.records.map((r) => [r.path, r]));
    const second = evaluateCompliance(twin({ fanOn: true }, { fanOn: false }), policy, previous, at(20));
    expect(second.records[0]?.state).toBe("drifted");
    expect(second.transitions).toEqual([expect.objectContaining({ path: "fanOn", from: "compliant", to: "drifted", at: at(20) })]);
  });

  test("a drifted record stays drifted, not stale, and returns to compliant", () => {
    const c = evaluateCompliance(twin({ fanOn: true }, { fanOn: true }), policy, new Map(), at(1));
    const d = evaluateCompliance(twin({ fanOn: true }, { fanOn: false }), policy, new Map(c.records.map((r) => [r.path, r])), at(2));
    const d2 = evaluateCompliance(twin({ fanOn: true }, { fanOn: 0 }), policy, new Map(d.records.map((r) => [r.path, r])), at(60));
    expect(d2.records[0]?.state).toBe("drifted");
    expect(d2.transitions).toEqual([]);
    const back = evaluateCompliance(twin({ fanOn: true }, { fanOn: true }), policy, new Map(d2.records.map((r) => [r.path, r])), at(61));
    expect(back.records[0]?.state).toBe("compliant");
  });

  test("a new desired version after compliance is pending, not drifted", () => {
    const c = evaluateCompliance(twin({ fanOn: true }, { fanOn: true }, 2), policy, new Map(), at(1));
    const next = evaluateCompliance(twin({ fanOn: false }, { fanOn: true }, 3, at(2)), policy, new Map(c.records.map((r) => [r.path, r])), at(2));
    expect(next.records[0]).toMatchObject({ state: "pending", desiredVersion: 3, desiredSince: at(2) });
  });

  test("an escalated record stays escalated until it complies or desired changes", () => {
    const pending = evaluateCompliance(twin({ fanOn: true }, {}), policy, new Map(), at(1));
    const escalated = new Map(pending.records.map((r) => [r.path, { ...r, state: "escalated" as const }]));
    expect(evaluateCompliance(twin({ fanOn: true }, { fanOn: false }), policy, escalated, at(30)).records[0]?.state).toBe("escalated");
    expect(evaluateCompliance(twin({ fanOn: true }, { fanOn: true }), policy, escalated, at(30)).records[0]?.state).toBe("compliant");
    expect(evaluateCompliance(twin({ fanOn: false }, {}, 3, at(30)), policy, escalated, at(30)).records[0]?.state).toBe("pending");
  });

  test("the desired version is the nearest $lastUpdatedVersion, else the section $version", () => {
    const t: Twin = {
      deviceId: "d1",
      moduleId: null,
      version: 3,
      tags: {},
      desired: { a: { b: 1 }, c: 2, $metadata: { $lastUpdated: T0, a: { $lastUpdated: T0, $lastUpdatedVersion: 7 } }, $version: 9 },
      reported: {},
    };
    const records = evaluateCompliance(t, policy, new Map(), at(1)).records;
    expect(records.find((r) => r.path === "a.b")?.desiredVersion).toBe(7);
    expect(records.find((r) => r.path === "c")?.desiredVersion).toBe(9);
  });

  test("desiredSince falls back to the evaluation time when desired has no metadata, and is kept after", () => {
    const t: Twin = { deviceId: "d1", moduleId: null, version: 3, tags: {}, desired: { fanOn: true, $version: 2 }, reported: {} };
    const first = evaluateCompliance(t, policy, new Map(), at(1));
    expect(first.records[0]?.desiredSince).toBe(at(1));
    const second = evaluateCompliance(t, policy, new Map(first.records.map((r) => [r.path, r])), at(5));
    expect(second.records[0]?.desiredSince).toBe(at(1));
    expect(second.changed).toEqual([]);
  });

  test("a deleted desired property is removed with a 'removed' transition", () => {
    const first = evaluateCompliance(twin({ fanOn: true, wifi: 1 }, {}), policy, new Map(), at(1));
    const second = evaluateCompliance(twin({ fanOn: true }, {}), policy, new Map(first.records.map((r) => [r.path, r])), at(2));
    expect(second.removed).toEqual(["wifi"]);
    expect(second.transitions).toEqual([expect.objectContaining({ path: "wifi", from: "pending", to: "removed" })]);
  });

  test("re-evaluating the same twin changes nothing", () => {
    const t = twin({ fanOn: true, climate: { max: 70 } }, { fanOn: true });
    const first = evaluateCompliance(t, policy, new Map(), at(1));
    const again = evaluateCompliance(t, policy, new Map(first.records.map((r) => [r.path, r])), at(1));
    expect(again.changed).toEqual([]);
    expect(again.transitions).toEqual([]);
  });
});

describe("recordStateAt", () => {
  test.each<[ComplianceState, string, string]>([
    ["pending", at(10), "stale"],
    ["pending", at(11), "pending"],
    ["drifted", at(0), "drifted"],
    ["failed", at(0), "failed"],
    ["compliant", at(0), "compliant"],
    ["escalated", at(0), "escalated"],
  ])("a stored %s record with staleAt %s is %s at the time asked", (stored, staleAt, expected) => {
    expect(recordStateAt(stored, staleAt, at(10))).toBe(expected);
  });
});

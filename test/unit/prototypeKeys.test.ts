/**
 * `__proto__`, `constructor` and `prototype` are ordinary twin keys for IoT Hub. Every value here is
 * written by hand (JSON text, since an object literal `{ "__proto__": … }` sets a prototype).
 */
import { containsDesired } from "../../shared/compliance/compareReported";
import { evaluateCompliance } from "../../shared/compliance/evaluateCompliance";
import { decodeTwinChanges } from "../../shared/events/decodeTwinChanges";
import { toTriggerInput } from "../../local/host/toTriggerInput";
import { parsePolicy } from "../../shared/policy/Policy";
import { resolveProperties } from "../../shared/policy/resolveProperties";
import { applyTwinChange } from "../../shared/twin/applyTwinChange";
import { jsonEqual, type Json, type JsonObject } from "../../shared/twin/json";
import { setAt, valueAt } from "../../shared/twin/paths";
import type { Twin } from "../../shared/twin/Twin";
import { FixtureTwin } from "../fixtures/twinEvents";
import { canonicalJson, prototypeIsClean } from "../fixtures/twinMergeCases";

const json = (text: string): JsonObject => JSON.parse(text) as JsonObject;
const T0 = "2026-01-01T00:00:00.000Z";
const policy = parsePolicy({ staleAfter: "10m", rules: [{ desired: "cfg", compare: "equals" }] });

function twin(desired: string, reported: string): Twin {
  return { deviceId: "d1", moduleId: null, version: 5, tags: {}, desired: json(desired), reported: json(reported) };
}

afterEach(() => expect(prototypeIsClean()).toBe(true));

describe("paths with prototype-named keys", () => {
  test("a lookup of a.__proto__ on an object without that own key is absent", () => {
    expect(valueAt(json('{"a":{"b":1}}'), ["a", "__proto__"])).toBeUndefined();
    expect(valueAt(json('{"a":{"b":1}}'), ["a", "constructor"])).toBeUndefined();
    expect(valueAt(json('{"a":{"b":1}}'), ["a", "toString"])).toBeUndefined();
  });

  test("a lookup of an own __proto__ key finds its value", () => {
    expect(valueAt(json('{"a":{"__proto__":{"b":1}}}'), ["a", "__proto__", "b"])).toBe(1);
  });

  test("setAt builds __proto__ and constructor as own keys", () => {
    const target: JsonObject = {};
    setAt(target, ["__proto__", "x"], 1);
    setAt(target, ["constructor", "prototype"], 2);
    expect(JSON.stringify(target)).toBe('{"__proto__":{"x":1},"constructor":{"prototype":2}}');
    expect(Object.getPrototypeOf(target)).toBe(Object.prototype);
  });
});

describe("policy resolution with prototype-named keys", () => {
  test("finds properties under __proto__, constructor and prototype", () => {
    const paths = resolveProperties(json('{"__proto__":{"x":1},"constructor":{"prototype":2},"$version":3}'), parsePolicy({ staleAfter: "10m", rules: [] })).map((p) => [p.path, p.desired]);
    expect(paths).toEqual([
      ["__proto__.x", 1],
      ["constructor.prototype", 2],
    ]);
  });
});

describe("compliance with prototype-named keys", () => {
  test('evaluateCompliance makes a record for desired {"__proto__": {"x": 1}} with its desired and reported values', () => {
    const evaluation = evaluateCompliance(
      twin('{"__proto__":{"x":1},"$metadata":{"__proto__":{"x":{"$lastUpdated":"2026-01-01T00:00:00Z","$lastUpdatedVersion":4}}},"$version":4}', '{"__proto__":{"x":1}}'),
      policy,
      new Map(),
      T0,
    );
    expect(evaluation.records.map((r) => ({ path: r.path, state: r.state, desired: r.desired, reported: r.reported, desiredVersion: r.desiredVersion, desiredSince: r.desiredSince }))).toEqual([
      { path: "__proto__.x", state: "compliant", desired: 1, reported: 1, desiredVersion: 4, desiredSince: "2026-01-01T00:00:00.000Z" },
    ]);
  });

  test("a desired __proto__ property the device has not reported is pending with no reported value", () => {
    const [record] = evaluateCompliance(twin('{"__proto__":{"x":1},"$version":4}', "{}"), policy, new Map(), T0).records;
    expect(record).toMatchObject({ path: "__proto__.x", state: "pending", desired: 1, reported: undefined, desiredVersion: 4 });
  });

  test("an object rule is not satisfied by a reported object without its own __proto__ key", () => {
    const [record] = evaluateCompliance(twin('{"cfg":{"__proto__":{}},"$version":2}', '{"cfg":{}}'), policy, new Map(), T0).records;
    expect(record).toMatchObject({ path: "cfg", state: "pending" });
    expect(containsDesired(json('{"__proto__":{}}'), json("{}"))).toBe(false);
    expect(containsDesired(json('{"constructor":{}}'), json("{}"))).toBe(false);
  });

  test("an object rule is satisfied by a reported object holding the same __proto__ key", () => {
    const [record] = evaluateCompliance(twin('{"cfg":{"__proto__":{"a":1}},"$version":2}', '{"cfg":{"__proto__":{"a":1}}}'), policy, new Map(), T0).records;
    expect(record).toMatchObject({ path: "cfg", state: "compliant" });
  });
});

describe("re-evaluation with keys named like Object.prototype methods", () => {
  test.each([['{"x":{"valueOf":1}}'], ['{"x":{"toString":"a"}}'], ['{"x":{"constructor":{"a":1}}}']])("re-evaluating a twin whose reported value is %s does not throw and changes nothing", (reported) => {
    // Two parses, as the stored records and a newly applied twin never share objects.
    const first = evaluateCompliance(twin('{"x":5,"$version":2}', reported), policy, new Map(), T0);
    const again = evaluateCompliance(twin('{"x":5,"$version":2}', reported), policy, new Map(first.records.map((r) => [r.path, r])), "2026-01-01T00:01:00.000Z");
    expect({ changed: again.changed, transitions: again.transitions }).toEqual({ changed: [], transitions: [] });
  });

  test("a desired object holding a constructor key keeps its desiredSince across evaluations", () => {
    const first = evaluateCompliance(twin('{"cfg":{"constructor":{"a":1}},"$version":2}', "{}"), policy, new Map(), T0);
    const again = evaluateCompliance(twin('{"cfg":{"constructor":{"a":1}},"$version":2}', "{}"), policy, new Map(first.records.map((r) => [r.path, r])), "2026-01-01T00:20:00.000Z");
    expect(again.records[0]).toMatchObject({ path: "cfg", desiredSince: T0, state: "stale" });
  });

  test.each<[string, string, boolean]>([
    ['{"valueOf":1}', '{"valueOf":1}', true],
    ['{"valueOf":1}', '{"valueOf":2}', false],
    ['{"constructor":{"a":1}}', '{"constructor":{"a":1}}', true],
    ['{"toString":"x","a":[1,{"b":null}]}', '{"a":[1,{"b":null}],"toString":"x"}', true],
    ['{"__proto__":{"a":1}}', "{}", false],
    ["[1,2]", '{"0":1,"1":2}', false],
  ])("jsonEqual(%s, %s) is %s", (a, b, equal) => {
    expect(jsonEqual(JSON.parse(a), JSON.parse(b))).toBe(equal);
    expect(jsonEqual(JSON.parse(b), JSON.parse(a))).toBe(equal);
  });
});

describe("applyTwinChange with prototype-named keys", () => {
  async function decoded(body: string, version: number, opType = "updateTwin") {
    const event = new FixtureTwin("d1").setDesired({});
    const input = await toTriggerInput([{ ...event, body }]);
    (input.triggerMetadata.propertiesArray as Array<Record<string, Json>>)[0]!.opType = opType;
    const result = decodeTwinChanges(input.messages, input.triggerMetadata);
    expect(result.deadLetters).toEqual([]);
    return { ...result.events[0]!, version };
  }

  test("a desired __proto__ patch is stored as a key and later patches merge into it", async () => {
    const first = applyTwinChange(undefined, await decoded('{"version":2,"properties":{"desired":{"__proto__":{"x":1},"$version":2}}}', 2));
    if (first.kind !== "applied") throw new Error("expected applied");
    const second = applyTwinChange(first.twin, await decoded('{"version":3,"properties":{"desired":{"__proto__":{"y":2},"constructor":1,"$version":3}}}', 3));
    if (second.kind !== "applied") throw new Error("expected applied");
    expect(canonicalJson(second.twin.desired)).toBe('{"__proto__":{"x":1,"y":2},"constructor":1}');
    expect(second.twin.desired["$version"]).toBe(3);
  });

  test("a replaceTwin carrying __proto__ in tags and reported keeps the keys", async () => {
    const outcome = applyTwinChange(undefined, await decoded('{"version":2,"tags":{"__proto__":"t"},"properties":{"desired":{},"reported":{"__proto__":{"r":1}}}}', 2, "replaceTwin"));
    if (outcome.kind !== "applied") throw new Error("expected applied");
    expect(canonicalJson(outcome.twin.tags)).toBe('{"__proto__":"t"}');
    expect(canonicalJson(outcome.twin.reported)).toBe('{"__proto__":{"r":1}}');
  });
});

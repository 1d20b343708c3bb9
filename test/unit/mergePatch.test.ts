import type { JsonObject } from "../../shared/twin/json";
import { mergePatch } from "../../shared/twin/mergePatch";
import { atTimes, canonicalJson, canonicalSection, newSection, prototypeIsClean, twinMergeCases, twinSectionCases, type TwinSectionCase } from "../fixtures/twinMergeCases";

describe("mergePatch", () => {
  const cases: Array<[string, object, object, object]> = [
    ["adds a new key", { a: 1 }, { b: 2 }, { a: 1, b: 2 }],
    ["overwrites a value", { a: 1 }, { a: 2 }, { a: 2 }],
    ["deletes a key set to null", { a: 1, b: 2 }, { b: null }, { a: 1 }],
    ["merges nested objects, keeping untouched keys", { c: { min: 1, max: 2 } }, { c: { max: 3 } }, { c: { min: 1, max: 3 } }],
    ["replaces arrays whole", { list: [1, 2, 3] }, { list: [4] }, { list: [4] }],
    ["replaces a value by an object", { a: 1 }, { a: { b: 1 } }, { a: { b: 1 } }],
    ["deletes a nested key", { c: { wifi: { ssid: "x" }, climate: { t: 1 } } }, { c: { wifi: null } }, { c: { climate: { t: 1 } } }],
    ["keeps the section $version from the patch", { a: 1, $version: 3 }, { a: 2, $version: 4 }, { a: 2, $version: 4 }],
    [
      "merges $metadata and drops the metadata of a deleted key",
      { a: 1, b: 2, $metadata: { $lastUpdated: "t1", a: { $lastUpdated: "t1" }, b: { $lastUpdated: "t1" } } },
      { b: null, $metadata: { $lastUpdated: "t2" } },
      { a: 1, $metadata: { $lastUpdated: "t2", a: { $lastUpdated: "t1" } } },
    ],
  ];
  test.each(cases)("%s", (_name, target, patch, expected) => {
    expect(mergePatch(target as never, patch as never)).toEqual(expected);
  });

  test("does not mutate its inputs", () => {
    const target = { c: { min: 1 } };
    const patch = { c: { max: 2 } };
    mergePatch(target, patch);
    expect(target).toEqual({ c: { min: 1 } });
    expect(patch).toEqual({ c: { max: 2 } });
  });
});

describe("mergePatch on the shared table of twin merge cases", () => {
  test.each(twinMergeCases.map((c) => [c.name, c] as const))("%s", (_name, c) => {
    const result = mergePatch(JSON.parse(c.base) as JsonObject, JSON.parse(c.patch) as JsonObject);
    expect(canonicalJson(result)).toBe(canonicalJson(JSON.parse(c.expected)));
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
    expect(prototypeIsClean()).toBe(true);
  });

  test("drops the $metadata of a deleted __proto__ key like any other", () => {
    const target = JSON.parse('{"__proto__":1,"k":2,"$metadata":{"__proto__":{"$lastUpdated":"t1"},"k":{"$lastUpdated":"t1"}}}') as JsonObject;
    const result = mergePatch(target, JSON.parse('{"__proto__":null}') as JsonObject);
    expect(JSON.stringify(result)).toBe('{"k":2,"$metadata":{"k":{"$lastUpdated":"t1"}}}');
  });

  test("merges $metadata of a __proto__ key as an own key", () => {
    const target = JSON.parse('{"$metadata":{"__proto__":{"a":{"$lastUpdated":"t1"}}}}') as JsonObject;
    const result = mergePatch(target, JSON.parse('{"__proto__":{"b":1},"$metadata":{"__proto__":{"b":{"$lastUpdated":"t2"}}}}') as JsonObject);
    expect(JSON.stringify(result)).toBe('{"$metadata":{"__proto__":{"a":{"$lastUpdated":"t1"},"b":{"$lastUpdated":"t2"}}},"__proto__":{"b":1}}');
  });
});

describe("mergePatch on the shared table of whole sections ($metadata, $version), applying each step's hand-written event", () => {
  const stamp = (i: number): string => `2026-01-01T00:00:0${i}.0000000Z`;
  const run = (c: TwinSectionCase): void => {
    let section = JSON.parse(atTimes(newSection, stamp)) as JsonObject;
    for (const step of c.steps) section = mergePatch(section, JSON.parse(atTimes(step.event, stamp)) as JsonObject);
    expect(canonicalSection(section)).toBe(canonicalSection(JSON.parse(atTimes(c.expected, stamp))));
    expect(prototypeIsClean()).toBe(true);
  };
  const agreed = twinSectionCases.filter((c) => c.differs === undefined);
  const differing = twinSectionCases.filter((c) => c.differs !== undefined);
  test.each(agreed.map((c) => [c.name, c] as const))("%s", (_name, c) => run(c));
  if (differing.length > 0) test.failing.each(differing.map((c) => [c.name, c] as const))("%s (differs: see the case)", (_name, c) => run(c));
});

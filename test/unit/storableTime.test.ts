import { evaluateCompliance } from "../../shared/compliance/evaluateCompliance";
import { parsePolicy } from "../../shared/policy/Policy";
import { clampedIsoTime, storableTime } from "../../shared/twin/storableTime";
import type { Twin } from "../../shared/twin/Twin";

describe("storableTime", () => {
  test.each([
    ["0001-01-01T00:00:00Z", -62135596800000],
    ["2026-01-01T00:00:00.2612586Z", 1767225600261],
    ["9999-12-31T23:59:59.999Z", 253402300799999],
  ])("reads %s", (text, ms) => expect(storableTime(text)).toBe(ms));

  test.each([["-000001-01-01T00:00:00Z"], ["0000-12-31T23:59:59Z"], ["+010000-01-01T00:00:00Z"], ["+200000-01-01T00:00:00Z"], ["+275760-09-13T00:00:00Z"], ["soon"], [""], [5], [null]])(
    "refuses %j",
    (value) => expect(storableTime(value)).toBeUndefined(),
  );

  test("clamps a deadline past year 9999 to the last storable instant instead of throwing", () => {
    expect(clampedIsoTime(8.64e15 + 1)).toBe("9999-12-31T23:59:59.999Z");
    expect(clampedIsoTime(Number.POSITIVE_INFINITY)).toBe("9999-12-31T23:59:59.999Z");
    expect(clampedIsoTime(-8.64e15 - 1)).toBe("0001-01-01T00:00:00.000Z");
    expect(clampedIsoTime(Date.parse("2026-01-01T00:00:00Z"))).toBe("2026-01-01T00:00:00.000Z");
  });
});

describe("evaluateCompliance on out-of-range dates in a twin it did not decode", () => {
  const policy = parsePolicy({ staleAfter: "10m", rules: [] });
  const twinWith = (lastUpdated: string): Twin => ({
    deviceId: "d1",
    moduleId: null,
    version: 3,
    tags: {},
    desired: { a: 1, $metadata: { $lastUpdated: lastUpdated, $lastUpdatedVersion: 2 }, $version: 2 },
    reported: {},
  });

  test.each([["+275760-09-13T00:00:00Z"], ["-000001-01-01T00:00:00Z"], ["+200000-01-01T00:00:00Z"]])("does not throw on a $lastUpdated of %s and falls back to the evaluation time", (lastUpdated) => {
    const [record] = evaluateCompliance(twinWith(lastUpdated), policy, new Map(), "2026-01-01T00:00:00.000Z").records;
    expect(record).toMatchObject({ desiredSince: "2026-01-01T00:00:00.000Z", staleAt: "2026-01-01T00:10:00.000Z", state: "pending" });
  });

  test("a $lastUpdated at the end of year 9999 keeps a storable staleAt", () => {
    const [record] = evaluateCompliance(twinWith("9999-12-31T23:59:59.999Z"), policy, new Map(), "2026-01-01T00:00:00.000Z").records;
    expect(record).toMatchObject({ desiredSince: "9999-12-31T23:59:59.999Z", staleAt: "9999-12-31T23:59:59.999Z", state: "pending" });
  });

  test("IoT Hub's 0001-01-01 $lastUpdated gives a record stale since long ago", () => {
    const [record] = evaluateCompliance(twinWith("0001-01-01T00:00:00Z"), policy, new Map(), "2026-01-01T00:00:00.000Z").records;
    expect(record).toMatchObject({ desiredSince: "0001-01-01T00:00:00.000Z", staleAt: "0001-01-01T00:10:00.000Z", state: "stale" });
  });
});

import type { JsonObject } from "../../shared/twin/json";
import { checkTwinLimits, twinSize } from "../../local/emulator/checkTwinLimits";
import { IotHubError } from "../../local/emulator/IotHubError";

function refusal(run: () => void): IotHubError {
  try {
    run();
  } catch (error) {
    if (error instanceof IotHubError) return error;
    throw error;
  }
  throw new Error("expected a refusal");
}

function nested(depth: number): JsonObject {
  let value: JsonObject = { leaf: 1 };
  for (let i = 1; i < depth; i++) value = { level: value };
  return value;
}

test("size counts key and string lengths, 8 bytes per number and 4 per boolean", () => {
  expect(twinSize({ ab: "xyz", n: 1, b: true, o: { k: [1, "zz"] } })).toBe(2 + 3 + 1 + 8 + 1 + 4 + 1 + 1 + 8 + 2);
});

test.each([
  ["desired", 32 * 1024],
  ["reported", 32 * 1024],
  ["tags", 8 * 1024],
] as const)("a %s section over %i bytes is refused with 400 ArgumentInvalid", (kind, limit) => {
  const under = { k: "x".repeat(4000) };
  const doc: JsonObject = {};
  for (let i = 0; twinSize(doc) + 4004 <= limit; i++) doc[`k${String(i).padStart(3, "0")}`] = "x".repeat(4000);
  expect(() => checkTwinLimits(kind, under, doc)).not.toThrow();
  doc.extra = "x".repeat(Math.min(4000, limit - twinSize(doc)));
  const error = refusal(() => checkTwinLimits(kind, { extra: doc.extra! }, doc));
  expect(error.status).toBe(400);
  expect(error.toBody("t", "ts").Message).toMatch(new RegExp(`^ErrorCode:ArgumentInvalid;Twin ${kind} size \\d+ bytes exceeds the limit of ${limit} bytes$`));
});

test("nesting depth 10 is accepted and 11 refused", () => {
  expect(() => checkTwinLimits("desired", nested(10), nested(10))).not.toThrow();
  expect(refusal(() => checkTwinLimits("desired", nested(11), nested(11))).message).toMatch(/nesting depth/);
});

test.each(["a.b", "$x", "with space", "tab\tkey", "ctl\u0001", "c1\u0085", ""])("key %p is refused", (key) => {
  const error = refusal(() => checkTwinLimits("desired", { [key]: 1 }, { [key]: 1 }));
  expect(error.code).toBe("ArgumentInvalid");
  expect(error.message).toMatch(/property name/);
});

test("keys longer than 1 KB and strings longer than 4 KB are refused", () => {
  expect(refusal(() => checkTwinLimits("tags", { ["k".repeat(1025)]: 1 }, {})).message).toMatch(/longer than 1024 bytes/);
  expect(refusal(() => checkTwinLimits("tags", { k: "v".repeat(4097) }, {})).message).toMatch(/longer than 4096 bytes/);
});

test("integers outside IoT Hub's range are refused", () => {
  expect(() => checkTwinLimits("desired", { n: 4503599627370495 }, {})).not.toThrow();
  expect(refusal(() => checkTwinLimits("desired", { n: 4503599627370496 }, {})).message).toMatch(/out of range/);
});

test("IotHubError bodies have IoT Hub's shape", () => {
  const body = new IotHubError(400, "ArgumentInvalid", "bad").toBody("abc", "2026-01-01T00:00:00.0000000Z");
  expect(body).toEqual({ Message: "ErrorCode:ArgumentInvalid;bad", ExceptionMessage: "Tracking ID:abc-G:0-TimeStamp:2026-01-01T00:00:00.0000000Z" });
});

import { parseDuration } from "../../shared/policy/parseDuration";
import { parsePolicy, parsePolicyText, PolicyError } from "../../shared/policy/Policy";
import { resolveProperties } from "../../shared/policy/resolveProperties";

const ISSUE_POLICY = {
  staleAfter: "10m",
  rules: [
    { desired: "components.climate.maxTemperature", reported: "maxTemperature" },
    { desired: "components.*.channel", reported: "radio.$1.channel", compare: "looseEquals" },
    { desired: "targetTemperature", compare: "ack" },
    { desired: "telemetryConfig", compare: "status", staleAfter: "1h" },
    { desired: "debug", compare: "ignore" },
  ],
};

describe("parsePolicy", () => {
  test("accepts the documented format and compiles durations", () => {
    const policy = parsePolicy(ISSUE_POLICY);
    expect(policy.staleAfterMs).toBe(600_000);
    expect(policy.rules).toHaveLength(5);
    expect(policy.rules[3]).toMatchObject({ compare: "status", staleAfterMs: 3_600_000 });
    expect(policy.rules[0]).toMatchObject({ compare: "equals", staleAfterMs: 600_000, repushDrift: true });
  });

  test.each([
    [{ rules: [{ desired: "a", compare: "fuzzy" }] }, "policy.rules[0].compare"],
    [{ staleAfter: "ten minutes" }, "policy.staleAfter"],
    [{ rules: [{ desired: "a..b" }] }, "policy.rules[0].desired"],
    [{ rules: [{ desired: "$metadata" }] }, "policy.rules[0].desired"],
    [{ rules: [{ desired: "a.*", reported: "x.$2" }] }, "policy.rules[0].reported"],
    [{ rules: [{ desired: "a", extra: true }] }, "policy.rules[0]"],
    [{ rules: {} }, "policy.rules"],
    [{ rules: [{ desired: "a", staleAfter: "5 parsecs" }] }, "policy.rules[0].staleAfter"],
  ])("refuses %j naming %s", (document, field) => {
    expect(() => parsePolicy(document)).toThrow(PolicyError);
    expect(() => parsePolicy(document)).toThrow(field);
  });

  test.each([
    [{ staleAfter: "3000000d" }, "policy.staleAfter", /too long: at most 365d/],
    [{ staleAfter: "P99999999D" }, "policy.staleAfter", /too long: at most 365d/],
    [{ staleAfter: "366d" }, "policy.staleAfter", /too long: at most 365d/],
    [{ staleAfter: `${"9".repeat(400)}s` }, "policy.staleAfter", /must be a duration/],
    [{ staleAfter: "0s" }, "policy.staleAfter", /too short: at least 1ms/],
    [{ staleAfter: "PT0S" }, "policy.staleAfter", /too short: at least 1ms/],
    [{ rules: [{ desired: "a", staleAfter: "P400D" }] }, "policy.rules[0].staleAfter", /too long: at most 365d/],
    [{ rules: Array.from({ length: 1001 }, (_, i) => ({ desired: `p${i}` })) }, "policy.rules", /at most 1000 rules/],
    [{ rules: [{ desired: "a".repeat(20_000) }] }, "policy.rules[0].desired", /at most/],
  ])("refuses out-of-bounds case %#, naming the field and the bound", (document, field, bound) => {
    expect(() => parsePolicy(document)).toThrow(PolicyError);
    expect(() => parsePolicy(document)).toThrow(field);
    expect(() => parsePolicy(document)).toThrow(bound);
  });

  test("accepts staleAfter up to 365 days, which any stored time can still be offset by", () => {
    expect(parsePolicy({ staleAfter: "365d" }).staleAfterMs).toBe(365 * 86_400_000);
    expect(parsePolicy({ staleAfter: "P365D", rules: [{ desired: "a", staleAfter: "1s" }] }).rules[0]?.staleAfterMs).toBe(1000);
    expect(new Date(Date.parse("9999-12-31T23:59:59Z") + 365 * 86_400_000).toISOString()).toMatch(/^\+010000/);
  });

  test("refuses text that is not JSON", () => {
    expect(() => parsePolicyText("{ rules: ")).toThrow(/not JSON/);
  });
});

describe("parseDuration", () => {
  test.each([
    ["250ms", 250],
    ["10s", 10_000],
    ["10m", 600_000],
    ["1.5h", 5_400_000],
    ["2d", 172_800_000],
    ["PT10M", 600_000],
    ["PT1H30M", 5_400_000],
    ["P1DT2H", 93_600_000],
    ["PT0.5S", 500],
  ])("reads %s", (text, ms) => expect(parseDuration(text)).toBe(ms));

  test.each(["", "10", "m", "PT", "P", "10 minutes", "-5m"])("refuses %j", (text) => {
    expect(() => parseDuration(text)).toThrow(/not a duration/);
  });

  test("refuses by default what setTimeout cannot wait (over 2^31-1 ms), naming the field", () => {
    expect(parseDuration("24d")).toBe(24 * 86_400_000);
    expect(parseDuration(`${2 ** 31 - 1}ms`)).toBe(2 ** 31 - 1);
    expect(() => parseDuration(`${2 ** 31}ms`, { name: "--duration" })).toThrow(/^--duration "2147483648ms" is too long: at most 24\.8d$/);
    expect(() => parseDuration("3000000d", { name: "REPUSH_LEASE" })).toThrow(/REPUSH_LEASE .*too long/);
    expect(() => parseDuration(`${"9".repeat(400)}d`)).toThrow(/too long/);
  });

  test("never accepts more than 365 days, whatever the caller asks", () => {
    expect(parseDuration("365d", { maxMs: Number.MAX_SAFE_INTEGER })).toBe(365 * 86_400_000);
    expect(() => parseDuration("366d", { maxMs: Number.MAX_SAFE_INTEGER })).toThrow(/at most 365d/);
  });

  test("refuses a value below the caller's minimum, naming it", () => {
    expect(() => parseDuration("10ms", { name: "staleAfter", minMs: 1000 })).toThrow(/^staleAfter "10ms" is too short: at least 1s$/);
  });
});

describe("resolveProperties", () => {
  const policy = parsePolicy(ISSUE_POLICY);
  const desired = {
    components: { climate: { maxTemperature: 76, minTemperature: 68 }, wifi: { channel: 6, ssid: "home" }, radio2: { channel: "11" } },
    targetTemperature: 21,
    telemetryConfig: { sendFrequency: "5m", compress: true },
    debug: { verbose: true },
    fanOn: false,
    list: [1, 2],
    __t: "c",
    $metadata: { $lastUpdated: "x" },
    $version: 4,
  };
  const props = resolveProperties(desired, policy);
  const byPath = Object.fromEntries(props.map((p) => [p.path, p]));

  test("a rule maps the desired path to another reported path", () => {
    expect(byPath["components.climate.maxTemperature"]).toMatchObject({ reportedPath: "maxTemperature", compare: "equals" });
  });
  test("* captures one segment and $1 inserts it", () => {
    expect(byPath["components.wifi.channel"]).toMatchObject({ reportedPath: "radio.wifi.channel", compare: "looseEquals" });
    expect(byPath["components.radio2.channel"]).toMatchObject({ reportedPath: "radio.radio2.channel" });
  });
  test("a rule matching an object makes it one property", () => {
    expect(byPath["telemetryConfig"]).toMatchObject({ compare: "status", staleAfterMs: 3_600_000, desired: { sendFrequency: "5m", compress: true } });
    expect(byPath["telemetryConfig.sendFrequency"]).toBeUndefined();
  });
  test("leaves under no rule are properties of their own with equals at the same path", () => {
    expect(byPath["components.climate.minTemperature"]).toMatchObject({ reportedPath: "components.climate.minTemperature", compare: "equals", staleAfterMs: 600_000 });
    expect(byPath["components.wifi.ssid"]).toMatchObject({ compare: "equals" });
    expect(byPath["fanOn"]).toMatchObject({ desired: false });
  });
  test("arrays are values", () => {
    expect(byPath["list"]).toMatchObject({ desired: [1, 2] });
    expect(byPath["list.0"]).toBeUndefined();
  });
  test("ignored paths, $ keys and the PnP component marker are never properties", () => {
    expect(Object.keys(byPath).filter((p) => p.startsWith("debug") || p.startsWith("$") || p.includes("__t"))).toEqual([]);
  });
  test("the first matching rule wins", () => {
    const first = parsePolicy({ rules: [{ desired: "a.*", reported: "first.$1" }, { desired: "a.b", reported: "second" }] });
    expect(resolveProperties({ a: { b: 1 } }, first)[0]).toMatchObject({ reportedPath: "first.b" });
  });
});

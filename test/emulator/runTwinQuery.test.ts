import type { JsonObject } from "../../shared/twin/json";
import { parseTwinQuery } from "../../local/emulator/parseTwinQuery";
import { runTwinQuery } from "../../local/emulator/runTwinQuery";

const twins: JsonObject[] = [
  { deviceId: "a", status: "enabled", version: 3, tags: { site: "north", floor: 1 }, properties: { desired: { interval: 10, mode: null }, reported: { interval: 10, fw: "1.0" } } },
  { deviceId: "b", status: "disabled", version: 7, tags: { site: "south", floor: 2 }, properties: { desired: { interval: 20 }, reported: { interval: 5 } } },
  { deviceId: "c", status: "enabled", version: 1, properties: { desired: { interval: 30, list: [1] }, reported: {} } },
];

function ids(sql: string): string[] {
  return runTwinQuery(parseTwinQuery(sql), twins).items.map((t) => String(t.deviceId));
}

test.each([
  ["tags.site = 'north'", ["a"]],
  ['tags.site = "north"', ["a"]],
  ["tags.site != 'north'", ["b"]],
  ["tags.site <> 'north'", ["b"]],
  ["tags.floor < 2", ["a"]],
  ["tags.floor > 1", ["b"]],
  ["tags.floor <= 2", ["a", "b"]],
  ["tags.floor >= 2", ["b"]],
  ["version > 2 AND status = 'enabled'", ["a"]],
  ["tags.site = 'south' OR properties.desired.interval = 30", ["b", "c"]],
  ["NOT (tags.site = 'north')", ["b"]],
  ["NOT tags.site = 'north' OR deviceId = 'c'", ["b", "c"]],
  ["(tags.floor = 1 OR tags.floor = 2) AND properties.reported.interval = 5", ["b"]],
  ["properties.desired.interval != properties.reported.interval", ["b"]],
  ["deviceId IN ['a', 'c']", ["a", "c"]],
  ["deviceId NIN ['a', 'c']", ["b"]],
  ["tags.floor IN [2, 3]", ["b"]],
  ["IS_DEFINED(tags.site)", ["a", "b"]],
  ["NOT IS_DEFINED(properties.reported.fw)", ["b", "c"]],
  ["IS_DEFINED(properties.desired.mode)", ["a"]],
  ["properties.desired.mode = null", ["a"]],
  ["properties.reported.fw = true", []],
  ["tags.floor = '1'", []],
  ["DEVICEID = 'a'", ["a"]],
  ["properties.Desired.interval = 10", ["a"]],
  ["properties.desired.interval = 0x14", ["b"]],
  ["version > -1", ["a", "b", "c"]],
])("WHERE %s selects %p", (where, expected) => {
  expect(ids(`SELECT * FROM devices WHERE ${where}`)).toEqual(expected);
});

test("comparisons with a missing value or an object are neither true nor false", () => {
  expect(ids("SELECT * FROM devices WHERE tags.site != 'x'")).toEqual(["a", "b"]);
  expect(ids("SELECT * FROM devices WHERE NOT (tags.site = 'x')")).toEqual(["a", "b"]);
  expect(ids("SELECT * FROM devices WHERE tags = 1")).toEqual([]);
});

test("projections return the named fields, aliased or under their last segment, and omit missing ones", () => {
  const page = runTwinQuery(parseTwinQuery("SELECT deviceId, tags.site, properties.reported.fw AS firmware FROM devices"), twins);
  expect(page.itemType).toBe("Raw");
  expect(page.items).toEqual([{ deviceId: "a", site: "north", firmware: "1.0" }, { deviceId: "b", site: "south" }, { deviceId: "c" }]);
});

test("SELECT * returns whole twins as item type Twin", () => {
  const page = runTwinQuery(parseTwinQuery("select * from devices"), twins);
  expect(page.itemType).toBe("Twin");
  expect(page.items).toEqual(twins);
});

test("COUNT() counts matching twins, under $1 or its alias", () => {
  expect(runTwinQuery(parseTwinQuery("SELECT COUNT() FROM devices"), twins).items).toEqual([{ $1: 3 }]);
  expect(runTwinQuery(parseTwinQuery("SELECT COUNT() AS n FROM devices WHERE status = 'enabled'"), twins).items).toEqual([{ n: 2 }]);
});

test("TOP limits the result", () => {
  expect(ids("SELECT TOP 2 * FROM devices")).toEqual(["a", "b"]);
});

test("paging returns pages of the requested size linked by continuation tokens", () => {
  const query = parseTwinQuery("SELECT deviceId FROM devices");
  const first = runTwinQuery(query, twins, { pageSize: 2 });
  expect(first.items).toEqual([{ deviceId: "a" }, { deviceId: "b" }]);
  expect(first.continuationToken).toEqual(expect.any(String));
  const second = runTwinQuery(query, twins, { pageSize: 2, continuationToken: first.continuationToken! });
  expect(second.items).toEqual([{ deviceId: "c" }]);
  expect(second.continuationToken).toBeUndefined();
});

test("a bad continuation token is refused with 400 BadRequest", () => {
  expect(() => runTwinQuery(parseTwinQuery("SELECT * FROM devices"), twins, { continuationToken: "garbage" })).toThrow(
    expect.objectContaining({ status: 400, code: "BadRequest" }),
  );
});

test("FROM devices.modules selects the module source", () => {
  expect(parseTwinQuery("SELECT * FROM devices.modules WHERE moduleId = 'm'").source).toBe("modules");
});

test.each([
  ["SELECT * FROM devices GROUP BY status", /GROUP BY is not supported/],
  ["SELECT * FROM devices WHERE version + 1 = 2", /arithmetic operator '\+'/],
  ["SELECT * FROM devices WHERE STARTSWITH(deviceId, 'a')", /function STARTSWITH\(\) is not supported/],
  ["SELECT AVG(version) FROM devices", /only COUNT\(\)/],
  ["SELECT * FROM devices.jobs", /devices\.jobs is not supported/],
  ["SELECT * FROM configurations", /FROM configurations is not supported/],
  ["SELECT * FROM devices WHERE tags.a IN ('x')", /expected '\['/],
  ["SELECT * FROM devices WHERE tags.a = 'open", /unterminated string/],
  ["SELECT * FROM devices WHERE", /unexpected 'end of query'/],
  ["DELETE FROM devices", /expected SELECT/],
  ["SELECT * FROM devices WHERE a = 1 extra", /unexpected 'extra'/],
  ["SELECT * FROM devices WHERE a ~ 1", /unexpected character '~'/],
])("%s is refused with 400 BadRequest", (sql, reason) => {
  expect(() => parseTwinQuery(sql)).toThrow(expect.objectContaining({ status: 400, code: "BadRequest", message: expect.stringMatching(reason) }));
});

test("queries longer than 8192 characters are refused", () => {
  expect(() => parseTwinQuery(`SELECT * FROM devices WHERE deviceId = '${"x".repeat(8200)}'`)).toThrow(expect.objectContaining({ status: 400 }));
});

import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { main } from "../../local/cli/main";
import { openPglite } from "../../shared/store/openPglite";

const FIXTURES = join(__dirname, "..", "fixtures", "replay");
const EVENTS = join(FIXTURES, "two-devices.jsonl");
const POLICY = join(FIXTURES, "policy.json");
const NOW = "2026-03-01T08:05:00Z";

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, (t) => (out += t), (t) => (err += t));
  return { code, out, err };
}

describe("twin-reconciler replay", () => {
  test("prints exactly one JSON document with the compliance report", async () => {
    const { code, out, err } = await cli(["replay", EVENTS, "--policy", POLICY, "--now", NOW, "--json"]);
    expect({ code, err }).toEqual({ code: 0, err: "" });
    const report = JSON.parse(out);
    expect(report.summary).toEqual({
      devices: 2,
      properties: 5,
      byState: { compliant: 2, pending: 1, stale: 0, drifted: 1, failed: 1, escalated: 0 },
      events: { applied: 9, duplicates: 1, ignored: 0, deadLettered: 1 },
    });
    expect(report.deadLetters).toEqual([{ line: 7, reason: "line is not JSON" }]);
    expect(report.devices.map((d: { deviceId: string; state: string }) => [d.deviceId, d.state])).toEqual([
      ["boiler-7", "drifted"],
      ["fan-2", "failed"],
    ]);
    expect(report.devices[0].properties[0]).toEqual({
      path: "components.climate.maxTemperature",
      reportedPath: "maxTemperature",
      compare: "equals",
      state: "drifted",
      desired: "76",
      reported: "80",
      desiredVersion: 2,
      desiredSince: "2026-03-01T08:00:01.000Z",
      stateSince: "2026-03-01T08:01:06.000Z",
    });
  });

  test("judges staleness at --now: pending ages into stale, drifted stays drifted", async () => {
    const { out } = await cli(["replay", EVENTS, "--policy", POLICY, "--now", "2026-03-01T09:00:00Z", "--json"]);
    const [boiler, fan] = JSON.parse(out).devices;
    expect(fan.properties.find((p: { path: string }) => p.path === "fanOn").state).toBe("stale");
    expect(boiler.properties.find((p: { path: string }) => p.path === "components.climate.maxTemperature").state).toBe("drifted");
    expect(boiler.state).toBe("drifted");
  });

  test("prints a readable table without --json", async () => {
    const { code, out } = await cli(["replay", EVENTS, "--policy", POLICY, "--now", NOW]);
    expect(code).toBe(0);
    expect(out).toContain("2 devices, 5 properties");
    expect(out).toMatch(/components\.climate\.maxTemperature\s+maxTemperature\s+equals\s+drifted/);
    expect(out).toContain("line 7: line is not JSON");
  });

  test("keeps going past lines that are not events, numbering them from 1", async () => {
    const dir = mkdtempSync(join(tmpdir(), "replay-"));
    const file = join(dir, "bad.jsonl");
    writeFileSync(file, ['{"body": {}}', "[]", "", "not json"].join("\n"));
    const { code, out } = await cli(["replay", file, "--json"]);
    expect(code).toBe(0);
    const report = JSON.parse(out);
    expect(report.deadLetters.map((d: { line: number }) => d.line)).toEqual([1, 2, 4]);
    expect(report.deadLetters[0].reason).toMatch(/enqueuedTimeUtc/);
    expect(report.summary.events.deadLettered).toBe(3);
  });

  test("a line whose enqueuedTimeUtc is not a time is a dead letter naming the field, and the next line is still applied", async () => {
    const dir = mkdtempSync(join(tmpdir(), "replay-"));
    const file = join(dir, "bad-time.jsonl");
    const [first] = readFileSync(EVENTS, "utf8").split("\n");
    writeFileSync(file, [JSON.stringify({ ...JSON.parse(first!), enqueuedTimeUtc: "yesterday" }), first].join("\n"));
    const { code, out } = await cli(["replay", file, "--json", "--policy", POLICY, "--now", NOW]);
    expect(code).toBe(0);
    const report = JSON.parse(out);
    expect(report.deadLetters).toEqual([{ line: 1, reason: expect.stringMatching(/enqueuedTimeUtc: not a time/) }]);
    expect(report.summary.events.applied).toBe(1);
  });

  test.each([
    [["replay"], /needs a FILE/],
    [["replay", "missing.jsonl"], /no such file/],
    [["frobnicate", EVENTS], /unknown command/],
    [["replay", EVENTS, "--now", "soon"], /--now/],
    [["replay", EVENTS, "--colour"], /Unknown option/],
  ])("exits 2 with a one-line message for %j", async (args, message) => {
    const { code, err, out } = await cli(args);
    expect(code).toBe(2);
    expect(out).toBe("");
    expect(err).toMatch(message);
    expect(err.trim().split("\n")).toHaveLength(1);
  });

  describe("hostile files", () => {
    const [first, second] = readFileSync(EVENTS, "utf8").split("\n");
    const fileOf = (lines: string[]) => {
      const file = join(mkdtempSync(join(tmpdir(), "replay-")), "events.jsonl");
      writeFileSync(file, lines.join("\n"));
      return file;
    };

    test("skips a line one byte over the 4 MiB cap, naming its number and why, and goes on", async () => {
      const cap = 4 * 1024 * 1024;
      const long = `{"pad":"${"x".repeat(cap + 1 - 10)}"}`;
      expect(Buffer.byteLength(long)).toBe(cap + 1);
      const { code, out, err } = await cli(["replay", fileOf([first!, long, second!]), "--json"]);
      expect({ code, err }).toEqual({ code: 0, err: "" });
      const report = JSON.parse(out);
      expect(report.deadLetters).toEqual([{ line: 2, reason: `line is ${cap + 1} bytes, over the ${cap}-byte cap; skipped` }]);
      expect(report.summary.events).toMatchObject({ applied: 2, deadLettered: 1 });
    });

    test("reads a line of exactly the cap", async () => {
      const cap = 4 * 1024 * 1024;
      const full = `{"pad":"${"x".repeat(cap - 10)}"}`;
      const { code, out } = await cli(["replay", fileOf([full, first!]), "--json"]);
      expect(code).toBe(0);
      const report = JSON.parse(out);
      expect(report.deadLetters).toEqual([{ line: 1, reason: expect.stringMatching(/not an Event Hubs event/) }]);
      expect(report.summary.events.applied).toBe(1);
    });

    test("accepts a UTF-8 BOM before the first line", async () => {
      const { code, out } = await cli(["replay", fileOf([`\uFEFF${first!}`, second!]), "--json"]);
      expect(code).toBe(0);
      const report = JSON.parse(out);
      expect(report.deadLetters).toEqual([]);
      expect(report.summary.events).toMatchObject({ applied: 2, deadLettered: 0 });
    });

    test("reads CRLF line ends and a last line without one", async () => {
      const { out } = await cli(["replay", fileOf([`${first!}\r`, second!]), "--json"]);
      expect(JSON.parse(out).summary.events).toMatchObject({ applied: 2, deadLettered: 0 });
    });
  });

  test.each([
    [["replay", EVENTS, "--db", "postgres://app:s3cret-pw@db.example:99999/twins"], /--db must be a postgres/],
    [["replay", EVENTS, "--db", "postgresql://app:s3cret-pw@[bad/twins"], /--db must be a postgres/],
    [["replay", EVENTS, "--db", "mysql://app:s3cret-pw@db.example/twins"], /--db must be a postgres/],
    [["replay", EVENTS, "--db", EVENTS], /is a file/],
    [["replay", FIXTURES], /not a file/],
  ])("exits 2 with one line, never a password, for the unusable arguments %j", async (args, message) => {
    const { code, err, out } = await cli(args);
    expect({ code, out }).toEqual({ code: 2, out: "" });
    expect(err).toMatch(message);
    expect(err).not.toContain("s3cret-pw");
    expect(err.trim().split("\n")).toHaveLength(1);
  });

  test("names a PGlite folder already in use, and what to do, in one line", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "replay-")), "pglite");
    const holder = await openPglite(dir);
    try {
      const { code, err } = await cli(["replay", EVENTS, "--db", dir]);
      expect(code).toBe(1);
      expect(err).toContain(`the PGlite data folder ${dir} is in use by process ${process.pid}`);
      expect(err).toMatch(/PGLITE_DATA_DIR/);
      expect(err.trim().split("\n")).toHaveLength(1);
    } finally {
      await holder.close();
    }
  }, 30_000);

  test("exits 2 naming the field of an invalid policy", async () => {
    const dir = mkdtempSync(join(tmpdir(), "replay-"));
    const policy = join(dir, "policy.json");
    writeFileSync(policy, JSON.stringify({ staleAfter: "soon" }));
    const { code, err } = await cli(["replay", EVENTS, "--policy", policy]);
    expect(code).toBe(2);
    expect(err).toMatch(/policy\.staleAfter/);
  });

  test("runs as the package's bin, as npx would", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [join(__dirname, "..", "..", "bin", "twin-reconciler.js"), "replay", EVENTS, "--policy", POLICY, "--now", NOW, "--json"]);
    expect(JSON.parse(stdout).summary.devices).toBe(2);
  });
});

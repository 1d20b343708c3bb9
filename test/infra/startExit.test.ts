import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { openPglite } from "../../shared/store/openPglite";

// `npm start` (bin/start.js) as a user runs it, in a folder of its own (the emulator's certificates
// go to <cwd>/.data): how it ends when it cannot run.
const startJs = path.join(__dirname, "..", "..", "bin", "start.js");
const cwd = mkdtempSync(path.join(tmpdir(), "npm-start-"));
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

function npmStart(args: string[], settings: Record<string, string>, script = startJs, nodeOptions: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, PGLITE_DATA_DIR: "memory", ...settings };
  delete env.DATABASE_URL;
  return new Promise((resolve) => {
    execFile(process.execPath, [...nodeOptions, script, "--port", "0", "--devices", "2", ...args], { cwd, env, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

const noStackTrace = (text: string) => expect(text).not.toMatch(/^\s+at /m);

/**
 * npm start reads local.settings.json from the app's root (beside host.json), found from its own
 * location: an app root of symlinks to this repository's files, run with --preserve-symlinks, holds
 * a local.settings.json of the test's without touching the repository's.
 */
function appRootWith(settingsText: string): string {
  const repo = path.join(__dirname, "..", "..");
  const root = mkdtempSync(path.join(cwd, "app-"));
  for (const name of readdirSync(repo)) {
    if (name !== "local.settings.json" && name !== ".data" && name !== ".git") symlinkSync(path.join(repo, name), path.join(root, name));
  }
  writeFileSync(path.join(root, "local.settings.json"), settingsText);
  return root;
}

/** npm start in that root; a run that does not fail stops after 1 s. */
function npmStartWithLocalSettings(settingsText: string) {
  const root = appRootWith(settingsText);
  return { file: path.join(root, "local.settings.json"), run: npmStart(["--duration", "1s"], {}, path.join(root, "bin", "start.js"), ["--preserve-symlinks", "--preserve-symlinks-main"]) };
}

describe("npm start", () => {
  it("prints one line per bad setting and exits 2, without a stack trace", async () => {
    const { code, stderr } = await npmStart([], { HUB_TWIN_OPS_PER_SECOND: "0.0000001", REPUSH_LEASE: "3000000d" });
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toEqual([
      "npm start: invalid setting HUB_TWIN_OPS_PER_SECOND: must be a number from 0.1 to 10000",
      expect.stringMatching(/^npm start: invalid setting REPUSH_LEASE: "3000000d" is too long: at most 1d/),
    ]);
    noStackTrace(stderr);
  }, 120_000);

  it("prints a bad policy as one line naming the field and exits 2", async () => {
    const { code, stderr } = await npmStart([], { POLICY_JSON: '{"staleAfter":"P99999999D"}' });
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toEqual([expect.stringMatching(/^npm start: invalid policy: policy\.staleAfter: .*at most 365d/)]);
  }, 120_000);

  it("prints a bad option as one line and exits 2", async () => {
    const { code, stderr } = await npmStart(["--devices", "many"], {});
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toEqual([expect.stringMatching(/^npm start: --devices must be a whole number/)]);
  }, 120_000);

  it("names a PGlite folder another run holds and exits 1, without a stack trace", async () => {
    const dataDir = path.join(cwd, "pglite");
    const holder = await openPglite(dataDir);
    try {
      const { code, stderr } = await npmStart([], { PGLITE_DATA_DIR: dataDir });
      expect(code).toBe(1);
      expect(stderr.trim().split("\n")).toEqual([expect.stringContaining(`npm start: the PGlite data folder ${dataDir} is in use by process ${process.pid}`)]);
      noStackTrace(stderr);
    } finally {
      await holder.close();
    }
  }, 120_000);

  it("reads local.settings.json from the app root these tests build (the harness below reaches the file)", async () => {
    const { code, stderr } = await npmStartWithLocalSettings('{"IsEncrypted": false, "Values": {"HUB_TWIN_OPS_PER_SECOND": "0.0000001"}}').run;
    expect({ code, lines: stderr.trim().split("\n") }).toEqual({ code: 2, lines: ["npm start: invalid setting HUB_TWIN_OPS_PER_SECOND: must be a number from 0.1 to 10000"] });
  }, 120_000);

  it.each([
    ["is not JSON", "this is not json {", /: is not valid JSON;/],
    ["ends too early", '{"Values": {"TWIN_EVENTS_HUB_NAME": "x"', /: is not valid JSON \(it ends too early\);/],
    ["has a syntax error after a key", '{"Values": {"TwinEvents": "Endpoint=sb://h;SharedAccessKey=hunter2-secret" "x": "y"}}', /: is not valid JSON at line 1, column 76;/],
    ["is an array", "[1, 2]", /: must be a JSON object with a "Values" object;/],
    ["has Values that is not an object", '{"Values": "PGLITE_DATA_DIR=memory"}', /: "Values" must be an object of setting names to strings;/],
    ["has a number value", '{"Values": {"HUB_TWIN_OPS_PER_SECOND": 10}}', /: Values\.HUB_TWIN_OPS_PER_SECOND must be a string \(it is a number\): quote it;/],
    ["has a null value", '{"Values": {"DATABASE_URL": null}}', /: Values\.DATABASE_URL must be a string \(it is null\)/],
  ])("prints a local.settings.json that %s as one line naming the file and exits 2", async (_what, text, problem) => {
    const { file, run } = npmStartWithLocalSettings(text);
    const { code, stderr } = await run;
    expect({ code, lines: stderr.trim().split("\n") }).toEqual({ code: 2, lines: [expect.stringMatching(problem)] });
    expect(stderr).toContain(`npm start: ${file}: `);
    expect(stderr).not.toContain("hunter2-secret");
    noStackTrace(stderr);
  }, 120_000);

  it("runs with POLICY_JSON alone, which replaces the demo's policy file", async () => {
    const { code, stdout, stderr } = await npmStart(["--duration", "1s"], { POLICY_JSON: '{"staleAfter":"1h"}' });
    expect({ code, stderr: stderr.split("\n").filter((l) => /POLICY|Invalid settings/.test(l)) }).toEqual({ code: 0, stderr: [] });
    expect(stdout).toMatch(/Policy\s+\(POLICY_JSON\)/);
    expect(JSON.parse(stdout.trim().split("\n").at(-1)!)).toMatchObject({ devices: 2 });
  }, 120_000);
});

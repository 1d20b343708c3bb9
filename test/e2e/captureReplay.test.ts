import { randomBytes } from "node:crypto";
/**
 * `twin-reconciler capture` against the emulator's Event Hubs (AMQP) endpoint, and capture → replay
 * equivalence: the live reconciler (the local host running reconcileTwinChanges, consuming the
 * emulator's stream through @azure/event-hubs) and a replay of the captured file into a fresh store give the same compliance records —
 * and both the verdicts the hub's twins call for, read through azure-iothub and judged by the small
 * evaluator below (not the product's).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Registry } from "azure-iothub";
import { main } from "../../local/cli/main";
import { startEmulator, type Emulator } from "../../local/emulator";
import { startLocalHost, type LocalHost } from "../../local/host/startLocalHost";
import { getStore } from "../../shared/reports/getStore";
import { closeRuntime } from "../../shared/runtime";
import { readFleetReport } from "../../shared/reports/readFleetReport";
import { toReplayDevice, type ReplayDevice } from "../../local/cli/replay";

const repoRoot = path.resolve(__dirname, "..", "..");
const dir = mkdtempSync(path.join(tmpdir(), "capture-e2e-"));
const POLICY = { staleAfter: "1h", rules: [{ desired: "components.climate.maxTemperature", reported: "maxTemperature" }] };
const policyFile = path.join(dir, "policy.json");
writeFileSync(policyFile, JSON.stringify(POLICY));

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const at = (o: unknown, dotted: string): unknown => dotted.split(".").reduce<unknown>((v, k) => (isObj(v) && Object.hasOwn(v, k) ? v[k] : undefined), o);

/** The test's own reading of POLICY: every desired leaf, compared by equality where the rule (or the same path) says the device reports it. */
function expectedVerdicts(twin: { properties: { desired: Obj; reported: Obj } }): Record<string, "compliant" | "notCompliant"> {
  const out: Record<string, "compliant" | "notCompliant"> = {};
  const walk = (node: Obj, prefix: string): void => {
    for (const [key, value] of Object.entries(node)) {
      if (key.startsWith("$")) continue;
      const p = prefix ? `${prefix}.${key}` : key;
      if (isObj(value)) walk(value, p);
      else {
        const reportedPath = POLICY.rules.find((r) => r.desired === p)?.reported ?? p;
        out[p] = JSON.stringify(at(twin.properties.reported, reportedPath)) === JSON.stringify(value) ? "compliant" : "notCompliant";
      }
    }
  };
  walk(twin.properties.desired, "");
  return out;
}

const verdictsOf = (devices: ReplayDevice[]) =>
  Object.fromEntries(
    devices.map((d) => [`${d.deviceId}/${d.moduleId ?? ""}`, Object.fromEntries(d.properties.map((p) => [p.path, p.state === "compliant" ? "compliant" : "notCompliant"]))]),
  );

let emulator: Emulator;
let host: LocalHost | undefined;
let registry: Registry;
const twinIds: Array<{ deviceId: string; moduleId: string | null }> = [];

beforeAll(async () => {
  emulator = await startEmulator({ throttling: "off", partitionCount: 4, faults: { seed: 7, duplicateProbability: 0.2, resendProbability: 0.1, resendMaxLength: 3 } });
  registry = emulator.createRegistryClient();
  // The window every test reads: devices with desired and reported changes, some compliant, some not.
  for (let i = 0; i < 8; i++) {
    const deviceId = `cap-${i}`;
    emulator.createDevice(deviceId);
    twinIds.push({ deviceId, moduleId: null });
    emulator.updateDesired({ deviceId, moduleId: null }, { interval: i, components: { climate: { maxTemperature: 70 + i } } });
    emulator.updateReported({ deviceId, moduleId: null }, { interval: i, maxTemperature: 70 + i });
    if (i % 2 === 1) emulator.updateDesired({ deviceId, moduleId: null }, { interval: i * 10, mode: "eco" });
    if (i % 4 === 1) emulator.updateReported({ deviceId, moduleId: null }, { interval: i * 10, mode: "eco" });
  }
});

afterAll(async () => {
  await host?.stop();
  await emulator?.stop();
  await closeRuntime();
});

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, (t) => (out += t), (t) => (err += t));
  return { code, out, err };
}

const readLines = (file: string) =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as { partitionId: string; sequenceNumber: number; body: Obj; properties: Obj; systemProperties: Obj; enqueuedTimeUtc: string; offset: string });

test("capture then replay gives the records the live reconciler wrote, and the hub's twins call for", async () => {
  // Live: the local host consumes the emulator's stream through @azure/event-hubs into the real reconcileTwinChanges.
  host = await startLocalHost({
    modules: [path.join(repoRoot, "functions", "reconcileTwinChanges.ts")],
    rootDir: path.join(__dirname, "fixtures"),
    settings: {
      DATABASE_URL: "",
      PGLITE_DATA_DIR: "memory",
      POLICY_PATH: policyFile,
      IOTHUB_CONNECTION_STRING: emulator.serviceConnectionString,
      IOTHUB_EMULATOR_PORT: String(emulator.httpsPort),
      IOTHUB_EMULATOR_CA_FILE: emulator.caFile,
      TWIN_EVENTS_HUB_NAME: "twin-changes",
      TWIN_EVENTS_CONSUMER_GROUP: "$Default",
      TwinEvents: emulator.eventHubs.connectionString,
    },
    eventHubs: { maxWaitTimeInSeconds: 0.2 },
    port: 0,
    scheduleTimers: false,
    log: () => undefined,
  });
  await host.drained();
  const now = new Date(Date.now() + 60_000).toISOString();
  const live = { devices: (await readFleetReport(await getStore(), { now: new Date(now) })).devices.map(toReplayDevice) };

  // Capture every event through the AMQP endpoint, as a user would with `npm start`'s TWIN_EVENTS_CONNECTION.
  const total = emulator.counters.events.appended;
  expect(total).toBeGreaterThan(30);
  expect(emulator.counters.events.duplicated + emulator.counters.events.resent).toBeGreaterThan(0);
  const file = path.join(dir, "window.jsonl");
  // The live host holds $Default's partitions with an owner level, as the Functions host does: capture says to use a group of its own.
  const sameGroup = await cli(["capture", "--connection-string", emulator.eventHubs.connectionString, "--count", "1", "--duration", "20s"]);
  expect(sameGroup.code).toBe(1);
  expect(sameGroup.err).toMatch(/^twin-reconciler: reading twin-changes failed \(partition \d+\): ReceiverDisconnectedError: .*; capture with a consumer group of your own \(--consumer-group NAME\)$/m);
  const captured = await cli(["capture", "--connection-string", emulator.eventHubs.connectionString, "--consumer-group", "capture", "--from", "earliest", "--count", String(total), "--duration", "30s", "--out", file]);
  expect({ code: captured.code, out: captured.out, err: captured.code === 0 ? "" : captured.err }).toEqual({ code: 0, out: "", err: "" });
  expect(captured.err).toContain(`capture: done (${total} events): ${total} events from`);
  expect(captured.err).toMatch(/partition 0: \d+, partition 1: \d+, partition 2: \d+, partition 3: \d+/);
  expect(captured.err).not.toContain("SharedAccessKey=");

  // Every partition, whole and in order (the stream's own lengths, not the capture's counts).
  const lines = readLines(file);
  expect(lines).toHaveLength(total);
  for (const partitionId of emulator.events.partitionIds) {
    const sequence = lines.filter((l) => l.partitionId === partitionId).map((l) => l.sequenceNumber);
    expect(sequence).toEqual(Array.from({ length: emulator.events.length(partitionId) }, (_, i) => i));
  }
  const sample = lines.find((l) => l.properties.opType === "updateTwin")!;
  expect(sample.systemProperties).toMatchObject({ "iothub-message-source": "twinChangeEvents", "iothub-connection-device-id": sample.properties.deviceId, "content-type": "application/json" });
  expect(typeof sample.enqueuedTimeUtc).toBe("string");

  // Replay into a fresh store (the CLI's in-memory PGlite).
  const replayed = await cli(["replay", file, "--policy", policyFile, "--now", now, "--json"]);
  expect({ code: replayed.code, err: replayed.err }).toEqual({ code: 0, err: "" });
  const report = JSON.parse(replayed.out) as { devices: ReplayDevice[]; deadLetters: unknown[] };
  expect(report.deadLetters).toEqual([]);
  expect(report.devices).toEqual(live.devices);

  // Both against the hub's twins, read through azure-iothub.
  const expected: Record<string, Record<string, string>> = {};
  for (const id of twinIds) {
    const twin = id.moduleId === null ? (await registry.getTwin(id.deviceId)).responseBody : (await registry.getModuleTwin(id.deviceId, id.moduleId)).responseBody;
    expected[`${id.deviceId}/${id.moduleId ?? ""}`] = expectedVerdicts(twin as unknown as { properties: { desired: Obj; reported: Obj } });
  }
  expect(Object.values(expected).flatMap((v) => Object.values(v))).toEqual(expect.arrayContaining(["compliant", "notCompliant"]));
  expect(verdictsOf(live.devices)).toEqual(expected);
  expect(verdictsOf(report.devices)).toEqual(expected);
}, 120_000);

test("--from seq:N, an enqueued time and latest start every partition where they say", async () => {
  const partitionId = emulator.events.partitionIds[0]!;
  const length = emulator.events.length(partitionId);
  const fromSeq = path.join(dir, "from-seq.jsonl");
  const expectedFromSeq = emulator.events.partitionIds.reduce((n, p) => n + Math.max(0, emulator.events.length(p) - 2), 0);
  const r1 = await cli(["capture", "--connection-string", emulator.eventHubs.connectionString, "--consumer-group", "capture", "--from", "seq:2", "--count", String(expectedFromSeq), "--duration", "20s", "--out", fromSeq]);
  expect(r1.code).toBe(0);
  const seqLines = readLines(fromSeq);
  expect(seqLines.filter((l) => l.partitionId === partitionId).map((l) => l.sequenceNumber)).toEqual(Array.from({ length: length - 2 }, (_, i) => i + 2));

  // latest: only what is sent after the capture starts. Changes keep coming until it has one (it attaches at some
  // point after it starts); an enqueued time taken before the first of them then reads exactly those changes.
  emulator.events.setFaults({});
  const latest = path.join(dir, "latest.jsonl");
  let done = false;
  const running = cli(["capture", "--connection-string", emulator.eventHubs.connectionString, "--consumer-group", "capture", "--from", "latest", "--count", "1", "--duration", "30s", "--out", latest]).finally(() => (done = true));
  const cutoff = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 5)); // the enqueued-time filter is exclusive, as Event Hubs' is
  let sent = 0;
  while (!done) {
    emulator.updateDesired({ deviceId: "cap-3", moduleId: null }, { interval: 1000 + sent++ });
    await new Promise((r) => setTimeout(r, 300));
  }
  expect((await running).code).toBe(0);
  const latestLines = readLines(latest);
  expect(latestLines).toHaveLength(1);
  expect(latestLines[0]!.properties.deviceId).toBe("cap-3");
  expect(at(latestLines[0]!.body, "properties.desired.interval")).toBeGreaterThanOrEqual(1000);

  const fromTime = path.join(dir, "from-time.jsonl");
  const r3 = await cli(["capture", "--connection-string", emulator.eventHubs.connectionString, "--consumer-group", "capture", "--from", cutoff, "--count", String(sent), "--duration", "20s", "--out", fromTime]);
  expect(r3.code).toBe(0);
  expect(readLines(fromTime).map((l) => at(l.body, "properties.desired.interval"))).toEqual(Array.from({ length: sent }, (_, i) => 1000 + i));
}, 60_000);

test("writes to stdout, and a wrong key ends it with exit 1 and one line that does not show the key", async () => {
  const toStdout = await cli(["capture", "--connection-string", emulator.eventHubs.connectionString, "--consumer-group", "capture", "--count", "3", "--duration", "20s"]);
  expect(toStdout.code).toBe(0);
  expect(toStdout.out.trim().split("\n").map((l) => JSON.parse(l).sequenceNumber as number)).toHaveLength(3);

  const wrongKey = emulator.eventHubs.connectionString.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${randomBytes(32).toString("base64")}`);
  const refused = await cli(["capture", "--connection-string", wrongKey, "--count", "1", "--duration", "20s"]);
  expect({ code: refused.code, out: refused.out }).toEqual({ code: 1, out: "" });
  expect(refused.err.trim().split("\n")).toHaveLength(1);
  expect(refused.err).toMatch(/^twin-reconciler: reading .* failed: /);
  expect(refused.err).not.toContain("V3ryWrongKey");
}, 60_000);

test("Ctrl-C ends a capture without --count or --duration cleanly: exit 0, every line whole", async () => {
  const file = path.join(dir, "interrupted.jsonl");
  const child = spawn(process.execPath, [path.join(repoRoot, "bin", "twin-reconciler.js"), "capture", "--connection-string", emulator.eventHubs.connectionString, "--consumer-group", "capture", "--out", file], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const total = emulator.counters.events.appended;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    let have = 0;
    try {
      have = readFileSync(file, "utf8").split("\n").filter(Boolean).length;
    } catch {
      // not created yet
    }
    if (have >= total) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  child.kill("SIGINT");
  expect(await exited).toBe(0);
  expect(stderr).toContain("capture: done (interrupted)");
  expect(readLines(file)).toHaveLength(total);
}, 60_000);

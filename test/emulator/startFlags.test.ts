import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:net";
import path from "node:path";

// `npm start`'s emulator flags, through a child process as a user runs it (node bin/start.js …).

const repoRoot = path.resolve(__dirname, "..", "..");
const startJs = path.join(repoRoot, "bin", "start.js");

/** The environment of a child: in-memory PGlite, no PostgreSQL, no inherited CA setting. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PGLITE_DATA_DIR: "memory", ...extra };
  delete env.DATABASE_URL;
  if (extra.NODE_EXTRA_CA_CERTS === undefined) delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

function listenOn(port: number): Promise<Server | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(null));
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

async function freePort(): Promise<number> {
  const server = (await listenOn(0))!;
  const { port } = server.address() as { port: number };
  await close(server);
  return port;
}

describe("bad values exit 2 with one line on stderr and no stack trace", () => {
  test.each([
    [["--drop-events", "2"], /--drop-events must be a fraction from 0 to below 1.*"2"/],
    [["--drop-events", "1"], /--drop-events must be a fraction/],
    [["--drop-events", "0.3x"], /--drop-events must be a fraction/],
    [["--hub-port", "70000"], /--hub-port must be a whole number from 0 to 65535, got "70000"/],
    [["--hub-port", "abc"], /--hub-port must be a whole number from 0 to 65535, got "abc"/],
    [["--mqtt-port", "-1"], /--mqtt-port/],
    [["--mqtt-port", "8883", "--hub-port", "8883"], /--hub-port and --mqtt-port cannot both be 8883/],
    [["--duration", "soon"], /--duration: "soon" is not a duration/],
    [["--no-such-flag"], /Unknown option '--no-such-flag'/],
  ])("%j", (args, message) => {
    const result = spawnSync(process.execPath, [startJs, ...args], { cwd: repoRoot, env: childEnv(), encoding: "utf8", timeout: 30_000 });
    expect(result.status).toBe(2);
    expect(result.stdout).toBe("");
    const lines = result.stderr.split("\n").filter((l) => l !== "");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  test("a hub port already in use", async () => {
    const taken = (await listenOn(0))!;
    try {
      const { port } = taken.address() as { port: number };
      const result = spawn(process.execPath, [startJs, "--hub-port", String(port)], { cwd: repoRoot, env: childEnv() });
      let stderr = "";
      result.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise<number | null>((resolve) => result.on("exit", resolve));
      expect(code).toBe(2);
      expect(stderr.trim().split("\n")).toEqual([expect.stringMatching(new RegExp(`cannot bind the IoT Hub emulator to port ${port} \\(already in use\\)`))]);
    } finally {
      await close(taken);
    }
  }, 60_000);
});

test("a short run binds the given ports, drops events, delivers every kept event through @azure/event-hubs, and prints IoT Hub and Event Hubs connection strings and a CA that the unmodified SDKs can use", async () => {
  // Port 443 lets the official Registry use the printed connection string as it is; it needs root
  // and a free port 443. Otherwise the run uses a free port and that one check is skipped.
  // 10 s, not less: the banner comes after PGlite opens (~5 s on a busy machine) and the check
  // must finish while the hub still runs.
  const probe443 = process.getuid?.() === 0 ? await listenOn(443) : null;
  if (probe443 !== null) await close(probe443);
  const hubPort = probe443 !== null ? 443 : await freePort();
  const mqttPort = await freePort();
  const hostPort = await freePort();
  if (hubPort !== 443) console.log("skipping the unchanged-connection-string check: port 443 is not free or this is not root");

  const child = spawn(
    process.execPath,
    [startJs, "--duration", "10s", "--devices", "5", "--drop-events", "0.3", "--hub-port", String(hubPort), "--mqtt-port", String(mqttPort), "--port", String(hostPort)],
    { cwd: repoRoot, env: childEnv() },
  );
  let stdout = "";
  let stderr = "";
  let registryCheck: Promise<{ code: number | null; out: string }> | undefined;
  let eventHubsCheck: Promise<{ code: number | null; out: string }> | undefined;
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    const twinEvents = /^TWIN_EVENTS_CONNECTION=(.*)$/m.exec(stdout)?.[1];
    if (eventHubsCheck === undefined && twinEvents !== undefined) {
      // The printed Event Hubs connection string, alone, in the unmodified @azure/event-hubs with a consumer group of its own.
      const script =
        'const { EventHubConsumerClient } = require("@azure/event-hubs");' +
        'const c = new EventHubConsumerClient("mine", process.env.TWIN_EVENTS_CONNECTION);' +
        "c.getEventHubProperties().then((p) => console.log(JSON.stringify({ name: p.name, partitionIds: p.partitionIds }))).catch((e) => { console.error(e.name); process.exitCode = 1; }).finally(() => c.close());";
      const check = spawn(process.execPath, ["-e", script], { cwd: repoRoot, env: childEnv({ TWIN_EVENTS_CONNECTION: twinEvents }) });
      let out = "";
      check.stdout.on("data", (c: Buffer) => (out += c.toString()));
      check.stderr.on("data", (c: Buffer) => (out += c.toString()));
      eventHubsCheck = new Promise((resolve) => check.on("exit", (code) => resolve({ code, out })));
    }
    const connection = /^IOTHUB_CONNECTION_STRING=(.*)$/m.exec(stdout)?.[1];
    const ca = /^NODE_EXTRA_CA_CERTS=(.*)$/m.exec(stdout)?.[1];
    if (registryCheck === undefined && connection !== undefined && ca !== undefined && hubPort === 443) {
      // A fresh process with only the two printed lines as its environment, as a user's tool would be.
      const script =
        'const { Registry } = require("azure-iothub");' +
        "const r = Registry.fromConnectionString(process.env.IOTHUB_CONNECTION_STRING);" +
        'r.list().then(({ responseBody }) => console.log(JSON.stringify(responseBody.map((d) => d.deviceId)))).catch((e) => { console.error(e.name); process.exit(1); });';
      const check = spawn(process.execPath, ["-e", script], { cwd: repoRoot, env: childEnv({ IOTHUB_CONNECTION_STRING: connection, NODE_EXTRA_CA_CERTS: ca }) });
      let out = "";
      check.stdout.on("data", (c: Buffer) => (out += c.toString()));
      check.stderr.on("data", (c: Buffer) => (out += c.toString()));
      registryCheck = new Promise((resolve) => check.on("exit", (code) => resolve({ code, out })));
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  expect({ code, stderr }).toEqual({ code: 0, stderr: expect.not.stringMatching(/SharedAccessKey=/) });

  const lines = stdout.split("\n");
  expect(lines).toContainEqual(expect.stringContaining(`service API https://localhost:${hubPort}, MQTT mqtts://localhost:${mqttPort}`));
  expect(lines).toContainEqual(expect.stringMatching(/^ {2}Event loss {8}30% of twin-change events never delivered/));
  const connection = lines.find((l) => l.startsWith("IOTHUB_CONNECTION_STRING="));
  expect(connection).toMatch(/^IOTHUB_CONNECTION_STRING=HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=[A-Za-z0-9+/]{43}=$/);
  const ca = lines.find((l) => l.startsWith("NODE_EXTRA_CA_CERTS="))!.slice("NODE_EXTRA_CA_CERTS=".length);
  expect(path.isAbsolute(ca) && existsSync(ca)).toBe(true);
  expect(lines).toContainEqual(expect.stringContaining(`http://localhost:${hostPort}/api`));

  const summary = JSON.parse(lines.filter((l) => l !== "").pop()!) as { devices: number; events: { emitted: number; appended: number; dropped: number; delivered: number } };
  expect(summary.devices).toBe(5);
  expect(summary.events.dropped).toEqual(expect.any(Number));
  // Every event the hub kept reached the reconcile function through @azure/event-hubs.
  expect(summary.events.appended).toBeGreaterThan(0);
  expect(summary.events.delivered).toBe(summary.events.appended);

  expect(lines.find((l) => l.startsWith("TWIN_EVENTS_CONNECTION="))).toMatch(
    /^TWIN_EVENTS_CONNECTION=Endpoint=sb:\/\/localhost:\d+;SharedAccessKeyName=[^;]+;SharedAccessKey=[^;]+;EntityPath=twin-changes;UseDevelopmentEmulator=true$/,
  );
  expect(eventHubsCheck).toBeDefined();
  const eventHubs = await eventHubsCheck!;
  expect(eventHubs).toEqual({ code: 0, out: expect.any(String) });
  expect(JSON.parse(eventHubs.out)).toEqual({ name: "twin-changes", partitionIds: ["0", "1", "2", "3"] });

  if (hubPort === 443) {
    expect(registryCheck).toBeDefined();
    const result = await registryCheck!;
    expect(result.code).toBe(0);
    expect((JSON.parse(result.out) as string[]).sort()).toEqual(["sim-001", "sim-002", "sim-003", "sim-004", "sim-005"]);
  }
}, 120_000);

import { randomBytes } from "node:crypto";
import path from "node:path";
import { startEventHubsEndpoint, type EventHubsEndpoint } from "../../local/emulator/startEventHubsEndpoint";
import type { LogSink } from "../../local/host/invokeFunction";
import { startLocalHost, type LocalHost } from "../../local/host/startLocalHost";
import { loadConfig } from "../../shared/config";
import { toTriggerInput } from "../../local/host/toTriggerInput";
import { closeRuntime, useRuntimeStore } from "../../shared/runtime";
import type { Database } from "../../shared/store/Database";
import { openTestPglite } from "../support/testDatabases";
import { InMemoryEventStream } from "./InMemoryEventStream";
import { fixtureRecorder } from "./fixtures/fixtureRecorder";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const core = require("@azure/functions-core") as { __state: { functions: Map<string, { metadata: { bindings: Record<string, Record<string, unknown>>; retryOptions?: Record<string, unknown> } }> } };

const fixturesDir = path.join(__dirname, "fixtures");
const settings = { FIXTURE_HUB_NAME: "fixture-hub", FIXTURE_CONSUMER_GROUP: "local-tests", FIXTURE_SCHEDULE: "*/1 * * * * *" };

let host: LocalHost | undefined;
let stream: InMemoryEventStream;
let endpoint: EventHubsEndpoint | undefined;
/** The store the functions' runtime uses, so it holds the host's checkpoints too. */
let db: Database;

interface StartOptions {
  scheduleTimers?: boolean;
  partitions?: number;
  log?: LogSink;
  /** Events appended before the host connects (so the first batches are full, and batching is deterministic). */
  before?: (stream: InMemoryEventStream) => void;
  /** Keep the checkpoints an earlier host of the test left in the store (default: forget them, the hub is new). */
  resume?: boolean;
}

/** A new in-memory hub served by the emulator's Event Hubs endpoint, and a host consuming it through @azure/event-hubs. */
async function start(options: StartOptions = {}): Promise<LocalHost> {
  if (!options.resume) {
    await endpoint?.close();
    stream = new InMemoryEventStream(options.partitions ?? 2);
    endpoint = await startEventHubsEndpoint(stream, { eventHubName: "fixture-hub", key: randomBytes(16).toString("base64") });
  }
  options.before?.(stream);
  host = await startLocalHost({
    modules: [path.join(fixturesDir, "hostFixtureFunctions.ts")],
    rootDir: fixturesDir,
    settings: { ...settings, FixtureEvents: endpoint!.connectionString },
    eventHubs: { forgetCheckpoints: !options.resume, loadBalancing: { updateIntervalInMs: 200 }, maxWaitTimeInSeconds: 0.2 },
    port: 0,
    scheduleTimers: options.scheduleTimers ?? false,
    log: options.log ?? (() => undefined),
  });
  return host;
}

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function twinEvent(deviceId: string, version: number) {
  return {
    body: { version, properties: { reported: { fanOn: version % 2 === 0, $version: version } } },
    properties: { hubName: "fixture-hub", deviceId, opType: "updateTwin", "iothub-message-schema": "twinChangeNotification" },
    // The partition key stated, as the emulator's endpoint would otherwise take the device id: the replay path then agrees.
    systemProperties: { "iothub-connection-device-id": deviceId, "iothub-message-source": "twinChangeEvents", "content-type": "application/json", "x-opt-partition-key": deviceId },
  };
}

beforeAll(async () => {
  db = await openTestPglite();
  useRuntimeStore(db);
});
afterAll(async () => {
  await endpoint?.close();
  await closeRuntime();
  useRuntimeStore(undefined);
  await db.close();
});
beforeEach(() => fixtureRecorder.reset());
afterEach(async () => {
  await host?.stop();
  host = undefined;
});

describe("registrations", () => {
  test("captures every app.* registration with its binding metadata and retry policy", async () => {
    const h = await start();
    expect(h.functions.map((f) => `${f.name}:${f.trigger}`).sort()).toEqual([
      "captureEvents:eventHubTrigger",
      "deviceDetail:httpTrigger",
      "echo:httpTrigger",
      "fails:httpTrigger",
      "thingsSummary:httpTrigger",
      "tick:timerTrigger",
    ]);
    const captured = core.__state.functions.get("captureEvents")!.metadata;
    expect(Object.values(captured.bindings)[0]).toMatchObject({
      type: "eventHubTrigger",
      direction: "in",
      cardinality: "many",
      connection: "FixtureEvents",
      eventHubName: "%FIXTURE_HUB_NAME%",
    });
    expect(captured.retryOptions).toMatchObject({ strategy: "fixedDelay", maxRetryCount: 3 });
  });
});

describe("Event Hub functions", () => {
  test("hands a batch the camel-cased trigger metadata the Functions host produces", async () => {
    await start();
    const event = stream.append("1", twinEvent("d1", 4).body, twinEvent("d1", 4).properties, twinEvent("d1", 4).systemProperties);
    await host!.drained();
    expect(host!.stats().eventHub.byFunction.captureEvents).toMatchObject({ events: 1, checkpoints: { "1": 1 } });

    expect(fixtureRecorder.eventHubCalls).toHaveLength(1);
    const { messages, triggerMetadata } = fixtureRecorder.eventHubCalls[0]!;
    expect(messages).toEqual([twinEvent("d1", 4).body]);
    expect(triggerMetadata).toMatchObject({
      propertiesArray: [{ deviceId: "d1", hubName: "fixture-hub", opType: "updateTwin" }],
      partitionKeyArray: ["d1"],
      sequenceNumberArray: [0],
      // As the host sends them: offsets as a string collection (each JSON-parsed by the library), times as
      // .NET DateTime text of Kind Unspecified (no zone, no trailing zeros).
      offsetArray: [0],
      enqueuedTimeUtcArray: ["2026-01-01T00:00:00"],
      partitionContext: { partitionId: "1", eventHubName: "fixture-hub", consumerGroup: "local-tests", fullyQualifiedNamespace: "localhost" },
    });
    const system = (triggerMetadata!.systemPropertiesArray as Record<string, unknown>[])[0]!;
    expect(system).toMatchObject({
      "iothub-connection-device-id": "d1",
      "x-opt-sequence-number": 0,
      sequenceNumber: 0,
      offset: 0,
      enqueuedTimeUtc: "2026-01-01T00:00:00",
    });
    expect(Object.keys(triggerMetadata!).every((k) => /^[a-z]/.test(k))).toBe(true);
    // The replay path shapes events the same way.
    expect(triggerMetadata).toMatchObject((await toTriggerInput([event], "fixture-hub", "local-tests")).triggerMetadata);
  });

  test("delivers each partition in order, in batches no larger than host.json's maxEventBatchSize", async () => {
    await start({ before: (s) => { for (let v = 1; v <= 5; v++) s.append("0", twinEvent("d2", v).body); } });
    await host!.drained();

    const versions = fixtureRecorder.eventHubCalls.flatMap((c) => c.messages.map((m) => (m as { version: number }).version));
    expect(versions).toEqual([1, 2, 3, 4, 5]);
    expect(fixtureRecorder.eventHubCalls.every((c) => c.messages.length <= 2)).toBe(true);
    expect(host!.stats().eventHub).toMatchObject({ events: 5, failures: 0, retries: 0 });
  });

  test("re-invokes a batch that threw with the same events until it succeeds, keeping order", async () => {
    fixtureRecorder.failNextEventHubCalls = 2;
    await start({ before: (s) => [1, 2, 3].forEach((v) => s.append("0", twinEvent("d3", v).body)) });
    await host!.drained();

    // How the SDK cuts batches depends on when events arrive (up to maxEventBatchSize 2); whatever the first
    // batch is, it is tried three times with the same events, and the rest follows in order.
    const calls = fixtureRecorder.eventHubCalls.map((c) => ({ versions: c.messages.map((m) => (m as { version: number }).version), retryCount: c.retryCount }));
    const first = calls[0]!.versions;
    expect(calls.slice(0, 3)).toEqual([0, 1, 2].map((retryCount) => ({ versions: first, retryCount })));
    expect(calls.slice(3).every((c) => c.retryCount === 0 && c.versions.length <= 2)).toBe(true);
    expect([...first, ...calls.slice(3).flatMap((c) => c.versions)]).toEqual([1, 2, 3]);
    expect(host!.stats().eventHub).toMatchObject({ batches: calls.length - 2, events: 3, retries: 2, failures: 0 });
  });

  test("checkpoints past a batch once its retries run out, and counts it lost", async () => {
    const errors: string[] = [];
    fixtureRecorder.failNextEventHubCalls = 4; // first try + maxRetryCount 3
    const lossy = await start({
      partitions: 1,
      log: (e) => (e.level === "error" ? errors.push(e.message) : undefined),
      before: (s) => [1, 2, 3].forEach((v) => s.append("0", twinEvent("d4", v).body)),
    });
    await lossy.drained();

    const batches = fixtureRecorder.eventHubCalls.map((c) => c.messages.map((m) => (m as { version: number }).version));
    const lost = batches[0]!;
    expect(batches.slice(0, 4)).toEqual([lost, lost, lost, lost]);
    expect(lossy.stats().eventHub).toMatchObject({ failures: 1, lostEvents: lost.length, retries: 3, events: 3 });
    expect(errors.filter((m) => m.startsWith("LOST BATCH"))).toHaveLength(1);
    // The lost batch is checkpointed past: the next events come once each, and it never again.
    expect([...lost, ...batches.slice(4).flat()]).toEqual([1, 2, 3]);
  });
});

describe("Event Hub consumption through @azure/event-hubs", () => {
  const deliveredVersions = () => fixtureRecorder.eventHubCalls.flatMap((c) => c.messages).map((m) => (m as { version: number }).version);

  test("keeps its checkpoints in the functions' store, so a restarted host delivers only what came after", async () => {
    await start({ before: (s) => [1, 2, 3].forEach((v) => s.append("0", twinEvent("d5", v).body)) });
    await host!.drained();
    await host!.stop();
    // Written by the host through the SDK's CheckpointStore: the last event of each partition it processed.
    const { rows } = await db.query<{ partition_id: string; sequence_number: string | number }>(
      "SELECT partition_id, sequence_number FROM event_hub_checkpoints WHERE event_hub_name = 'fixture-hub' ORDER BY partition_id",
    );
    expect(rows.map((r) => [r.partition_id, Number(r.sequence_number)])).toEqual([["0", 2]]);

    stream.append("0", twinEvent("d5", 4).body);
    stream.append("1", twinEvent("d6", 1).body);
    const restarted = await start({ resume: true });
    await restarted.drained();
    expect(deliveredVersions().sort()).toEqual([1, 1, 2, 3, 4]); // d5's 1..4 once each, d6's 1 once
    const seen = fixtureRecorder.eventHubCalls.flatMap((c) =>
      (c.triggerMetadata!.sequenceNumberArray as number[]).map((seq) => `${(c.triggerMetadata!.partitionContext as { partitionId: string }).partitionId}:${seq}`),
    );
    expect(seen.sort()).toEqual(["0:0", "0:1", "0:2", "0:3", "1:0"]);
    expect(restarted.stats().eventHub.byFunction.captureEvents).toMatchObject({ events: 2, checkpoints: { "0": 4, "1": 1 }, ownedPartitions: ["0", "1"] });
  });

  test("drained() waits for events appended while the host runs", async () => {
    const h = await start();
    await h.drained();
    for (let v = 1; v <= 7; v++) stream.append(String(v % 2), twinEvent("d7", v).body);
    await h.drained();
    expect(fixtureRecorder.eventHubCalls.flatMap((c) => c.messages)).toHaveLength(7);
    expect(h.stats().eventHub.byFunction.captureEvents!.checkpoints).toEqual({ "0": 3, "1": 4 });
  });

  test("leaves an Event Hub function untriggered, with a warning naming the setting, when its connection setting is not set", async () => {
    const warnings: string[] = [];
    host = await startLocalHost({
      modules: [path.join(fixturesDir, "hostFixtureFunctions.ts")],
      rootDir: fixturesDir,
      settings,
      port: 0,
      scheduleTimers: false,
      log: (e) => (e.level === "warning" ? warnings.push(e.message) : undefined),
    });
    expect(warnings).toEqual([expect.stringMatching(/^captureEvents: app setting FixtureEvents is not set, so this Event Hub function will not be triggered/)]);
    expect(host.stats().eventHub.byFunction).toEqual({});
    await host.drained();
  });

  test("refuses a connection setting that is not an Event Hubs connection string, naming the setting and never quoting it", async () => {
    const secret = "hunter2-not-a-key";
    const failed = startLocalHost({
      modules: [path.join(fixturesDir, "hostFixtureFunctions.ts")],
      rootDir: fixturesDir,
      settings: { ...settings, FixtureEvents: `HostName=localhost;SharedAccessKey=${secret}` },
      port: 0,
      scheduleTimers: false,
      log: () => undefined,
    });
    await expect(failed).rejects.toThrow(/^app setting FixtureEvents is not an Event Hubs connection string/);
    await expect(failed).rejects.not.toThrow(new RegExp(secret));
  });
});

describe("timer functions", () => {
  test("runTimer fires the function with the timer input the host sends", async () => {
    await start();
    await host!.runTimer("tick");
    expect(fixtureRecorder.timerCalls).toEqual([{ schedule: { adjustForDST: true }, scheduleStatus: null, isPastDue: false }]);
    await expect(host!.runTimer("nope")).rejects.toThrow(/no timer function named "nope"/);
  });

  test("fires on its NCRONTAB schedule resolved from app settings", async () => {
    await start({ scheduleTimers: true });
    expect(host!.stats().timers.tick).toMatchObject({ schedule: "*/1 * * * * *" });
    await waitUntil(() => fixtureRecorder.timerCalls.length >= 2, "two scheduled runs");
  });

  test("never overlaps a run with the previous run of the same timer", async () => {
    await start({ scheduleTimers: true });
    let open!: () => void;
    fixtureRecorder.timerGate = new Promise((resolve) => (open = resolve));
    await waitUntil(() => fixtureRecorder.timerRunning === 1, "a scheduled run");
    const manual = host!.runTimer("tick");
    await waitUntil(() => host!.stats().timers.tick!.skipped >= 1, "a skipped occurrence");
    fixtureRecorder.timerGate = undefined;
    open();
    await manual;
    expect(fixtureRecorder.maxConcurrentTimerRuns).toBe(1);
  });

  test("refuses a schedule that is not six NCRONTAB fields, naming the function", async () => {
    await expect(
      startLocalHost({
        modules: [path.join(fixturesDir, "hostFixtureFunctions.ts")],
        rootDir: fixturesDir,
        settings: { ...settings, FIXTURE_SCHEDULE: "*/5 * * * *" },
        port: 0,
        log: () => undefined,
      }),
    ).rejects.toThrow(/timer tick: schedule "\*\/5 \* \* \* \*" is not an NCRONTAB expression/);
  });
});

describe("HTTP functions", () => {
  test("routes by template, passing route parameters, query and headers", async () => {
    const h = await start();
    const res = await fetch(`http://127.0.0.1:${h.port}/api/things/dev-7/properties/climate?limit=5`, { headers: { "x-trace": "t1" } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ params: { deviceId: "dev-7", path: "climate" }, limit: "5", trace: "t1" });

    const optional = await fetch(`http://127.0.0.1:${h.port}/api/things/dev-8/properties`);
    expect(await optional.json()).toMatchObject({ params: { deviceId: "dev-8" } });
  });

  test("prefers a literal route over a parameter in the same place", async () => {
    const h = await start();
    const res = await fetch(`http://127.0.0.1:${h.port}/api/things/summary/properties`);
    expect(await res.json()).toEqual({ summary: true });
  });

  test("passes the request body and writes status, headers and body back", async () => {
    const h = await start();
    const res = await fetch(`http://127.0.0.1:${h.port}/api/echo`, { method: "POST", body: "hello" });
    expect(res.status).toBe(201);
    expect(res.headers.get("content-type")).toBe("text/plain");
    expect(await res.text()).toBe("echo:hello");
  });

  const problemOf = async (res: Response) => ({ status: res.status, contentType: res.headers.get("content-type"), allow: res.headers.get("allow"), body: (await res.json()) as Record<string, unknown> });

  test("answers an unknown route with a 404 problem+json", async () => {
    const h = await start();
    for (const url of [`/api/nowhere`, `/elsewhere`, `/api/things`, `/api/${"x".repeat(5000)}`]) {
      const { status, contentType, body } = await problemOf(await fetch(`http://127.0.0.1:${h.port}${url}`));
      expect({ url: url.slice(0, 40), status, contentType }).toEqual({ url: url.slice(0, 40), status: 404, contentType: "application/problem+json" });
      expect(body).toMatchObject({ type: expect.stringMatching(/not-found$/), title: expect.any(String), status: 404, detail: expect.any(String) });
      expect((body.detail as string).length).toBeLessThan(400);
    }
  });

  test("answers a method the route does not take with a 405 problem+json and an Allow header", async () => {
    const h = await start();
    const echo = await problemOf(await fetch(`http://127.0.0.1:${h.port}/api/echo`));
    expect(echo).toMatchObject({ status: 405, contentType: "application/problem+json", allow: "POST", body: { status: 405, detail: expect.stringContaining("POST") } });
    const detail = await problemOf(await fetch(`http://127.0.0.1:${h.port}/api/things/dev-1/properties`, { method: "DELETE" }));
    expect(detail).toMatchObject({ status: 405, allow: "GET" });
    const health = await problemOf(await fetch(`http://127.0.0.1:${h.port}/api/health`, { method: "POST" }));
    expect(health).toMatchObject({ status: 405, allow: "GET" });
  });

  test("answers 500 problem+json when the function throws", async () => {
    const h = await start();
    const res = await problemOf(await fetch(`http://127.0.0.1:${h.port}/api/fails`));
    expect(res).toMatchObject({ status: 500, contentType: "application/problem+json", body: { status: 500 } });
    expect(JSON.stringify(res.body)).not.toContain("boom");
  });

  test("serves GET /api/health with the loaded functions while running", async () => {
    const h = await start();
    const res = await fetch(`http://127.0.0.1:${h.port}/api/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { status: string; functions: string[] };
    expect(body.status).toBe("ok");
    expect(body.functions).toContain("captureEvents");
  });
});

describe("lifecycle", () => {
  test("stop closes the server, restores app settings and can be called twice", async () => {
    const h = await start();
    expect(process.env.FIXTURE_HUB_NAME).toBe("fixture-hub");
    await Promise.all([h.stop(), h.stop()]);
    await h.stop();
    expect(process.env.FIXTURE_HUB_NAME).toBeUndefined();
    await expect(fetch(`http://127.0.0.1:${h.port}/api/health`)).rejects.toThrow();
  });
});

describe("app settings", () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  test("lets the user's POLICY_JSON replace the built-in POLICY_PATH, so the settings validate", async () => {
    delete process.env.POLICY_PATH;
    process.env.POLICY_JSON = '{"staleAfter":"5m"}';
    await start();
    expect(process.env.POLICY_PATH).toBeUndefined();
    expect(loadConfig(process.env).policy).toEqual({ kind: "inline", json: { staleAfter: "5m" } });
  });

  test("keeps the built-in POLICY_PATH when the user sets no policy", async () => {
    delete process.env.POLICY_PATH;
    delete process.env.POLICY_JSON;
    await start();
    expect(loadConfig(process.env).policy).toEqual({ kind: "file", path: expect.stringMatching(/demo-policy\.json$/) });
  });
});

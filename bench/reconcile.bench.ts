/**
 * npm run bench:reconcile — events/s end to end through the reconcile handler path
 * (toTriggerInput → reconcileTwinChanges → store), into PGlite and into PostgreSQL when
 * DATABASE_URL is set; IoT Hub calls per 1,000 events; peak RSS. Side by side, in the same run:
 * a naive baseline that reads the twin from an S1-throttled registry (100 reads/s) for every event.
 *
 * On PostgreSQL, one more row: the same stream "through @azure/event-hubs from the emulator" —
 * appended to the emulator's stream, read by EventHubConsumerClient from its AMQP endpoint (both in
 * this process), each batch turned into trigger input by the one converter and handed to the
 * reconcile handler. The last line is one JSON document with the figures.
 *
 * Options (env): BENCH_DEVICES (10000), BENCH_EVENTS (200000), BENCH_BATCH (100),
 * BENCH_PARTITIONS (4), BENCH_BASELINE_EVENTS (500: the baseline is throttled, so it runs a sample),
 * BENCH_EVENTHUBS (1; 0 skips the Event Hubs row).
 */
import { earliestEventPosition, EventHubConsumerClient } from "@azure/event-hubs";
import { startEmulator } from "../local/emulator";
import { toReceivedEvent } from "../local/host/receivedEventData";
import { evaluateCompliance } from "../shared/compliance/evaluateCompliance";
import type { ReceivedEvent } from "../shared/events/ReceivedEvent";
import { toTriggerInput } from "../local/host/toTriggerInput";
import { decodeTwinChanges } from "../shared/events/decodeTwinChanges";
import { rateLimitedTwinRegistry, TokenBucket } from "../shared/hub/TokenBucket";
import type { TwinRegistry } from "../shared/hub/TwinRegistry";
import { parsePolicy } from "../shared/policy/Policy";
import { reconcileTwinChanges } from "../shared/reconcile";
import type { Database } from "../shared/store/Database";
import { loadTwinStates, writeBatch } from "../shared/store/complianceStore";
import type { Twin } from "../shared/twin/Twin";
import { FixtureTwin } from "../test/fixtures/twinEvents";
import { openTestPglite, openTestPostgres } from "../test/support/testDatabases";

const DEVICES = Number(process.env.BENCH_DEVICES ?? 10_000);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 200_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 100);
const PARTITIONS = Number(process.env.BENCH_PARTITIONS ?? 4);
const BASELINE_EVENTS = Number(process.env.BENCH_BASELINE_EVENTS ?? 500);

const policy = parsePolicy({
  staleAfter: "10m",
  rules: [
    { desired: "patchId", reported: "lastPatchReceivedId" },
    { desired: "components.climate.*", reported: "$1" },
    { desired: "targetTemperature", compare: "ack" },
    { desired: "telemetryConfig", compare: "status" },
  ],
});

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);

/** A fleet's twin-change stream: each device starts with a full replace, then desired rollouts and reports. */
function generate(): { partitions: ReceivedEvent[][]; twins: Map<string, FixtureTwin> } {
  const clock = { now: Date.parse("2026-01-01T00:00:00Z") };
  const twins = new Map<string, FixtureTwin>();
  const partitions: ReceivedEvent[][] = Array.from({ length: PARTITIONS }, () => []);
  const seq = new Array<number>(PARTITIONS).fill(0);
  const push = (twin: FixtureTwin, event: ReceivedEvent, p: number): void => {
    partitions[p]!.push({ ...event, partitionId: String(p), sequenceNumber: seq[p]!++ });
  };
  for (let d = 0; d < DEVICES; d++) {
    const twin = new FixtureTwin(`device-${String(d).padStart(6, "0")}`, clock);
    twins.set(twin.deviceId, twin);
    push(twin, twin.replace(), d % PARTITIONS);
  }
  let n = DEVICES;
  let round = 0;
  while (n < EVENTS) {
    for (let d = 0; d < DEVICES && n < EVENTS; d++, n++) {
      const twin = twins.get(`device-${String(d).padStart(6, "0")}`)!;
      clock.now += 3;
      const step = round % 4;
      const event =
        step === 0
          ? twin.setDesired({ patchId: `rollout-${round}`, fanOn: round % 8 === 0, components: { climate: { minTemperature: 60 + (round % 10), maxTemperature: 75 } }, targetTemperature: 20 + (round % 5), telemetryConfig: { sendFrequency: `${round % 3}m` } })
          : step === 1
            ? twin.report({ lastPatchReceivedId: `rollout-${round - 1}`, fanOn: (round - 1) % 8 === 0, minTemperature: 60 + ((round - 1) % 10), maxTemperature: 75 })
            : step === 2
              ? twin.report({ targetTemperature: { value: 20 + ((round - 2) % 5), ac: 200, av: twin.desiredVersion }, telemetryConfig: { sendFrequency: `${(round - 2) % 3}m`, status: "success" } })
              : twin.report({ fanOn: d % 10 === 0 });
      push(twin, event, d % PARTITIONS);
    }
    round++;
  }
  return { partitions, twins };
}

/** Stands in for IoT Hub's registry in-process (limits: serves the generator's twins, counts reads; no network). */
class InProcessRegistry implements TwinRegistry {
  reads = 0;
  constructor(private twins: Map<string, FixtureTwin>) {}
  async getTwin(key: { deviceId: string }): Promise<Twin> {
    this.reads++;
    return this.twins.get(key.deviceId)!.get();
  }
  async updateTwin(): Promise<Twin> {
    throw new Error("not used");
  }
}

async function runReconcile(db: Database, partitions: ReceivedEvent[][], registry: InProcessRegistry) {
  const limited = rateLimitedTwinRegistry(registry, new TokenBucket({ ratePerSecond: 100 }));
  const started = process.hrtime.bigint();
  let events = 0;
  await Promise.all(
    partitions.map(async (partition) => {
      for (let i = 0; i < partition.length; i += BATCH) {
        const { messages, triggerMetadata } = await toTriggerInput(partition.slice(i, i + BATCH));
        const result = await reconcileTwinChanges(messages, triggerMetadata, { db, policy, registry: limited });
        events += result.applied + result.duplicates;
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { events, seconds, rate: events / seconds, hubCallsPer1000: (registry.reads / events) * 1000 };
}

/** The naive design: no stored twin; read the whole twin from the hub for every event, then evaluate and write. */
async function runBaseline(db: Database, partitions: ReceivedEvent[][], registry: InProcessRegistry) {
  const limited = rateLimitedTwinRegistry(registry, new TokenBucket({ ratePerSecond: 100 }));
  const sample = partitions.flat().slice(0, BASELINE_EVENTS);
  const started = process.hrtime.bigint();
  for (let i = 0; i < sample.length; i += BATCH) {
    const { messages, triggerMetadata } = await toTriggerInput(sample.slice(i, i + BATCH));
    const decoded = decodeTwinChanges(messages, triggerMetadata);
    const states = await loadTwinStates(db, decoded.events.map((e) => e.key));
    const write: Parameters<typeof writeBatch>[1] = { at: new Date().toISOString(), twins: [], records: [], removed: [], history: [], devices: [], deadLetters: [] };
    for (const event of decoded.events) {
      const twin = await limited.getTwin(event.key);
      const evaluation = evaluateCompliance(twin, policy, states.get(event.key.deviceId)?.records ?? new Map(), event.enqueuedTime);
      write.records.push(...evaluation.changed.map((record) => ({ key: event.key, record })));
    }
    await db.transaction((tx) => writeBatch(tx, write));
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { events: sample.length, seconds, rate: sample.length / seconds, hubCallsPer1000: (registry.reads / sample.length) * 1000 };
}

/**
 * The stream through the real transport: appended to the emulator's routed stream, read back by
 * `EventHubConsumerClient.subscribe` (batches of BATCH, every partition) from the emulator's AMQP
 * endpoint, each batch turned into the trigger's input and handed to the reconcile handler.
 * Timed from subscribe until the last event is handled (connection set-up included).
 */
async function runThroughEventHubs(db: Database, partitions: ReceivedEvent[][], registry: InProcessRegistry) {
  const limited = rateLimitedTwinRegistry(registry, new TokenBucket({ ratePerSecond: 100 }));
  const emulator = await startEmulator({ throttling: "off", partitionCount: PARTITIONS, routeLifecycleEvents: false });
  const client = new EventHubConsumerClient("$Default", emulator.eventHubs.connectionString);
  try {
    for (const partition of partitions) {
      for (const event of partition) {
        const deviceId = String(event.properties.deviceId);
        emulator.events.append({ deviceId, twinKey: `${deviceId}/#bench`, body: event.body, properties: event.properties, systemProperties: event.systemProperties, enqueuedTimeMs: Date.parse(event.enqueuedTimeUtc) });
      }
    }
    const total = emulator.counters.events.appended;
    let received = 0;
    let events = 0;
    let batches = 0;
    let settle!: (error?: Error) => void;
    const done = new Promise<void>((resolve, reject) => (settle = (error) => (error ? reject(error) : resolve())));
    const started = process.hrtime.bigint();
    const subscription = client.subscribe(
      {
        processEvents: async (batch, context) => {
          if (batch.length === 0) return;
          // The SDK's batch as replay lines, then through the one converter (toRpcEventHubBatch, inside toTriggerInput) and @azure/functions.
          const { messages, triggerMetadata } = await toTriggerInput(batch.map((data) => toReceivedEvent(data, context.partitionId)));
          const result = await reconcileTwinChanges(messages, triggerMetadata, { db, policy, registry: limited });
          events += result.applied + result.duplicates;
          received += batch.length;
          batches++;
          if (received >= total) settle();
        },
        processError: async (error) => settle(error),
      },
      { startPosition: earliestEventPosition, maxBatchSize: BATCH, maxWaitTimeInSeconds: 1 },
    );
    await done;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await subscription.close();
    return { events, seconds, rate: events / seconds, hubCallsPer1000: (registry.reads / events) * 1000, meanBatch: received / batches };
  } finally {
    await client.close();
    await emulator.stop();
  }
}

async function withStore<T>(name: string, work: (db: Database) => Promise<T>): Promise<T> {
  // The test suites' stores: PostgreSQL in a schema of its own (dropped at close), or in-memory PGlite.
  const db = name === "postgres" ? await openTestPostgres(process.env.DATABASE_URL as string, { max: PARTITIONS + 1 }) : await openTestPglite();
  try {
    return await work(db);
  } finally {
    await db.close();
  }
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const { partitions, twins } = generate();
  const total = partitions.reduce((n, p) => n + p.length, 0);
  console.log(`twin-change stream: ${DEVICES} devices, ${total} events in ${PARTITIONS} partitions, batches of ${BATCH} (generated in ${Date.now() - t0} ms)`);
  const stores = (process.env.BENCH_STORES ?? ["pglite", ...(process.env.DATABASE_URL ? ["postgres"] : [])].join(",")).split(",");
  const rows: string[][] = [["store", "design", "events", "seconds", "events/s", "hub calls / 1000 events", "peak RSS MiB"]];
  const figures: Record<string, unknown> = { devices: DEVICES, events: total, partitions: PARTITIONS, batch: BATCH };
  const mib = (): string => (peakRss / 1024 / 1024).toFixed(0);
  for (const store of stores) {
    // Peak RSS per row: the process's peak while that row ran (the stream itself stays in memory throughout).
    peakRss = process.memoryUsage().rss;
    const result = await withStore(store, (db) => runReconcile(db, partitions, new InProcessRegistry(twins)));
    rows.push([store, "twin-reconciler (stored twin)", String(result.events), result.seconds.toFixed(1), result.rate.toFixed(0), result.hubCallsPer1000.toFixed(2), mib()]);
    peakRss = process.memoryUsage().rss;
    console.log(`  ${store}: ${result.rate.toFixed(0)} events/s`);
    figures[store] = { eventsPerSecond: Math.round(result.rate) };
    if (store === "postgres" && process.env.BENCH_EVENTHUBS !== "0") {
      peakRss = process.memoryUsage().rss;
      const through = await withStore(store, (db) => runThroughEventHubs(db, partitions, new InProcessRegistry(twins)));
      rows.push([store, "through @azure/event-hubs from the emulator", String(through.events), through.seconds.toFixed(1), through.rate.toFixed(0), through.hubCallsPer1000.toFixed(2), mib()]);
      console.log(`  ${store} through @azure/event-hubs: ${through.rate.toFixed(0)} events/s (batches of ${through.meanBatch.toFixed(1)} events on average)`);
      figures.eventHubs = { store, eventsPerSecond: Math.round(through.rate), meanBatch: Number(through.meanBatch.toFixed(1)) };
      peakRss = process.memoryUsage().rss;
    }
    const baseline = await withStore(store, (db) => runBaseline(db, partitions, new InProcessRegistry(twins)));
    rows.push([store, `naive getTwin per event (S1: 100 reads/s; ${baseline.events}-event sample)`, String(baseline.events), baseline.seconds.toFixed(1), baseline.rate.toFixed(0), baseline.hubCallsPer1000.toFixed(0), mib()]);
    console.log(`  ${store} baseline: ${baseline.rate.toFixed(0)} events/s (would need ${(total / baseline.rate / 60).toFixed(0)} min for the whole stream)`);
  }
  clearInterval(sampler);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log("");
  for (const row of rows) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join("  "));
  console.log("\ntarget: >= 20,000 events/s on PostgreSQL, 0 hub calls for in-order events");
  console.log(JSON.stringify(figures));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

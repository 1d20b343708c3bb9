/**
 * Property-based, against independent truths. Random desired / reported / tags changes are made on
 * the IoT Hub emulator (its own merge model); its routed stream is delivered the way IoT Hub may
 * deliver it (the emulator's fault injection: duplicates, re-sent series, coalesced changes) and
 * in random batches to the real reconcileTwinChanges. Then:
 * - the stored twin's desired and reported sections equal the emulator's twin read through
 *   azure-iothub's `getTwin` (values and `$metadata`, as the product stores both), and
 * - the stored property records equal what a small evaluator written here (not shared/compliance)
 *   gives for this test's policy, walked over the twins the stream made the reconciler see (each
 *   delivered event whose twin version is new, the twin at that version as the SDK read it).
 * Nothing expected is computed by product code.
 */
import fc from "fast-check";
import type { Registry } from "azure-iothub";
import { toTriggerInput } from "../../local/host/toTriggerInput";
import { createManualClock, startEmulator, type Emulator, type ManualClock } from "../../local/emulator";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { parsePolicy } from "../../shared/policy/Policy";
import { reconcileTwinChanges } from "../../shared/reconcile";
import type { Database } from "../../shared/store/Database";
import { openTestPglite } from "../support/testDatabases";

const RUNS = Number(process.env.PROPERTY_RUNS ?? 40);
const STALE_AFTER_MS = 5 * 60_000;
const policy = parsePolicy({ staleAfter: "5m", rules: [{ desired: "climate.*", reported: "$1" }, { desired: "wifi" }] });

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

type Op = { kind: "desired" | "reported" | "tags"; patch: Obj; after: number };

const small = fc.oneof(fc.boolean(), fc.integer({ min: 0, max: 3 }), fc.constantFrom("68", "70", "on"));
const wifi = fc.record({ ssid: fc.constantFrom("home", "lab"), channel: fc.integer({ min: 1, max: 3 }) }, { requiredKeys: [] });
const desiredPatch = fc.record(
  {
    fanOn: fc.oneof(fc.boolean(), fc.constant(null)),
    level: fc.oneof(small, fc.constant(null)),
    climate: fc.oneof(fc.record({ min: fc.oneof(small, fc.constant(null)), max: small }, { requiredKeys: [] }), fc.constant(null)),
    wifi: fc.oneof(wifi, fc.constant(null)),
  },
  { requiredKeys: [] },
);
const reportedPatch = fc.record(
  {
    fanOn: fc.oneof(fc.boolean(), fc.constant(null)),
    level: fc.oneof(small, fc.constant(null)),
    min: fc.oneof(small, fc.constant(null)),
    max: small,
    wifi: fc.oneof(wifi, fc.constant(null)),
  },
  { requiredKeys: [] },
);
const after = fc.integer({ min: 0, max: 240_000 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("desired" as const), patch: desiredPatch, after }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("reported" as const), patch: reportedPatch, after }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("tags" as const), patch: fc.record({ building: fc.constantFrom("43", "44") }), after }) },
);

// ---- The test's own evaluator for `policy` (equals everywhere; climate.X is reported at X; wifi is one property). ----

interface Expected {
  path: string;
  state: "compliant" | "pending" | "drifted" | "stale";
  desired: unknown;
  reported: unknown;
  desiredVersion: number;
}

function contains(desired: unknown, reported: unknown): boolean {
  if (reported === undefined) return false;
  if (isObj(desired)) return isObj(reported) && Object.entries(desired).every(([k, v]) => k.startsWith("$") || contains(v, reported[k]));
  return desired === reported;
}

/** Properties of a desired section: [path, reported path, value]. */
function properties(desired: Obj): [string[], string[], unknown][] {
  const out: [string[], string[], unknown][] = [];
  for (const [key, value] of Object.entries(desired)) {
    if (key.startsWith("$")) continue;
    if (key === "climate" && isObj(value)) {
      for (const [k, v] of Object.entries(value)) if (!k.startsWith("$")) out.push([["climate", k], [k], v]);
    } else if (key === "wifi" || !isObj(value)) out.push([[key], [key], value]);
  }
  return out;
}

/** The nearest `$metadata` level on the path with `$lastUpdatedVersion` / `$lastUpdated`; the version falls back to `$version`. */
function desiredMetadata(desired: Obj, path: string[]): { version: number; since: string } {
  let node: unknown = desired.$metadata;
  let version = desired.$version as number;
  let since = "";
  for (let depth = 0; isObj(node); depth++) {
    if (typeof node.$lastUpdatedVersion === "number") version = node.$lastUpdatedVersion;
    if (typeof node.$lastUpdated === "string") since = node.$lastUpdated;
    if (depth === path.length) break;
    node = node[path[depth]!];
  }
  return { version, since };
}

function evaluate(twin: { desired: Obj; reported: Obj }, previous: Map<string, Expected>, now: string): Map<string, Expected> {
  const next = new Map<string, Expected>();
  for (const [path, reportedPath, desired] of properties(twin.desired)) {
    const reported = reportedPath.reduce<unknown>((node, k) => (isObj(node) ? node[k] : undefined), twin.reported);
    const { version, since } = desiredMetadata(twin.desired, path);
    const before = previous.get(path.join("."));
    const sameDesired = before?.desiredVersion === version;
    const state = contains(desired, reported)
      ? "compliant"
      : sameDesired && (before.state === "compliant" || before.state === "drifted")
        ? "drifted"
        : Date.parse(now) >= Date.parse(since) + STALE_AFTER_MS
          ? "stale"
          : "pending";
    next.set(path.join("."), { path: path.join("."), state, desired, reported, desiredVersion: version });
  }
  return next;
}

// ---- Hub side ----

const strip$ = (section: unknown): unknown =>
  isObj(section) ? Object.fromEntries(Object.entries(section).filter(([k]) => !k.startsWith("$")).map(([k, v]) => [k, strip$(v)])) : section;

async function hubTwin(registry: Registry, deviceId: string): Promise<{ version: number; desired: Obj; reported: Obj }> {
  const twin = (await registry.getTwin(deviceId)).responseBody as unknown as { version: number; properties: { desired: Obj; reported: Obj } };
  return { version: twin.version, desired: twin.properties.desired, reported: twin.properties.reported };
}

let emulator: Emulator;
let clock: ManualClock;
let registry: Registry;
let db: Database;
let run = 0;
let cursor = 0;
const statesSeen = new Set<string>();

beforeAll(async () => {
  clock = createManualClock(Date.UTC(2026, 1, 1));
  emulator = await startEmulator({ clock, partitionCount: 1, throttling: "off" });
  registry = emulator.createRegistryClient();
  db = await openTestPglite();
});

afterAll(async () => {
  await emulator?.stop();
  await db?.close();
});

async function deliver(events: readonly ReceivedEvent[], batchSizes: readonly number[]): Promise<void> {
  let i = 0;
  let b = 0;
  while (i < events.length) {
    const size = Math.max(1, batchSizes[b++ % batchSizes.length] ?? 1);
    const { messages, triggerMetadata } = await toTriggerInput(events.slice(i, i + size));
    await reconcileTwinChanges(messages, triggerMetadata, { db, policy, clock: () => new Date("2026-03-01T00:00:00Z") });
    i += size;
  }
}

test(`under duplicates, re-sent series, coalescing and any batching, the stored twin is the hub's and the records are the evaluator's (${RUNS} devices)`, async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(op, { minLength: 1, maxLength: 10 }),
      fc.integer({ min: 1, max: 1_000_000 }),
      fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }),
      async (ops, seed, batchSizes) => {
        const deviceId = `prop-${run++}`;
        emulator.events.setFaults({ seed, duplicateProbability: 0.2, resendProbability: 0.15, resendMaxLength: 3, coalesceProbability: 0.3 });
        emulator.createDevice(deviceId);
        // The twin at each version, as the official SDK reads it from the emulator.
        const snapshots = new Map<number, { desired: Obj; reported: Obj }>();
        const first = await hubTwin(registry, deviceId);
        snapshots.set(first.version, first);
        for (const o of ops) {
          clock.advance(o.after);
          if (o.kind === "desired") emulator.updateDesired({ deviceId, moduleId: null }, o.patch as never);
          else if (o.kind === "reported") emulator.updateReported({ deviceId, moduleId: null }, o.patch as never);
          else emulator.updateTwin({ deviceId, moduleId: null }, { tags: o.patch } as never);
          const twin = await hubTwin(registry, deviceId);
          snapshots.set(twin.version, twin);
        }
        const delivered = emulator.events.read("0", cursor, 100_000).filter((e) => e.properties.deviceId === deviceId);
        cursor = emulator.events.lastEnqueued("0")!.sequenceNumber + 1;
        await deliver(delivered, batchSizes);

        // Truth 1: the emulator's twin (its own merge), through azure-iothub.
        const hub = await hubTwin(registry, deviceId);
        const stored = (await db.query<{ version: unknown; desired: Obj; reported: Obj }>("SELECT version, desired, reported FROM twins WHERE device_id = $1", [deviceId])).rows[0];
        expect({ version: Number(stored?.version), desired: stored?.desired, reported: stored?.reported }).toEqual(hub);

        // Truth 2: the evaluator over the twins the reconciler saw, in delivery order.
        let seen = -1;
        let expected = new Map<string, Expected>();
        for (const event of delivered) {
          const version = (event.body as { version?: number }).version;
          if (typeof version !== "number" || version <= seen) continue;
          seen = version;
          const twin = snapshots.get(version);
          if (!twin) throw new Error(`no snapshot of ${deviceId} at version ${version}`);
          expected = evaluate(twin, expected, event.enqueuedTimeUtc);
        }
        const records = await db.query<{ path: string; state: string; desired: unknown; reported: unknown; desired_version: unknown }>(
          "SELECT path, state, desired, reported, desired_version FROM property_records WHERE device_id = $1 ORDER BY path",
          [deviceId],
        );
        const actual = records.rows.map((r) => ({
          path: r.path,
          state: r.state,
          desired: strip$(r.desired),
          reported: r.reported === null ? undefined : strip$(r.reported),
          desiredVersion: Number(r.desired_version),
        }));
        const want = [...expected.values()].sort((a, b) => (a.path < b.path ? -1 : 1)).map((e) => ({ ...e, desired: strip$(e.desired), reported: strip$(e.reported) }));
        expect(actual).toEqual(want);
        for (const r of actual) statesSeen.add(r.state);
      },
    ),
    { numRuns: RUNS },
  );
  // The run was messy and reached every state this policy has.
  const { duplicated, resent, coalesced } = emulator.counters.events;
  expect({ duplicated: duplicated > 0, resent: resent > 0, coalesced: coalesced > 0 }).toEqual({ duplicated: true, resent: true, coalesced: true });
  if (RUNS >= 40) expect([...statesSeen].sort()).toEqual(["compliant", "drifted", "pending", "stale"]);
}, 120_000);

/**
 * Property-based: IoT Hub delivers twin-change events in order but at least once (a series can be
 * re-sent: 1,2,1,2,3), duplicates single events, and may coalesce several changes into one event.
 * Whatever the delivery and however it is cut into batches, the stored result must be the one the
 * clean, in-order stream gives. Each generated stream is one device, so a run of 1,000 streams
 * costs one store, not a thousand.
 */
import fc from "fast-check";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { toTriggerInput } from "../../local/host/toTriggerInput";
import { parsePolicy } from "../../shared/policy/Policy";
import { reconcileTwinChanges } from "../../shared/reconcile";
import type { Database } from "../../shared/store/Database";
import { isJsonObject, type JsonObject } from "../../shared/twin/json";
import { FixtureTwin } from "../fixtures/twinEvents";
import { openTestPglite } from "../support/testDatabases";

const RUNS = Number(process.env.PROPERTY_RUNS ?? 1000);
const policy = parsePolicy({
  staleAfter: "5m",
  rules: [
    { desired: "climate.*", reported: "$1" },
    { desired: "target", compare: "ack" },
  ],
});

type Op =
  | { kind: "desired"; patch: JsonObject; after: number }
  | { kind: "reported"; patch: JsonObject; after: number }
  | { kind: "tags"; patch: JsonObject; after: number };

const small = fc.oneof(fc.boolean(), fc.integer({ min: 0, max: 3 }), fc.constantFrom("68", "70", "on"));
const desiredPatch = fc.record(
  {
    fanOn: fc.oneof(fc.boolean(), fc.constant(null)),
    level: fc.oneof(small, fc.constant(null)),
    climate: fc.oneof(fc.record({ min: small, max: small }, { requiredKeys: [] }), fc.constant(null)),
    target: fc.integer({ min: 15, max: 25 }),
    wifi: fc.oneof(fc.record({ ssid: fc.constantFrom("home", "lab"), channel: fc.integer({ min: 1, max: 3 }) }), fc.constant(null)),
  },
  { requiredKeys: [] },
);
const reportedPatch = fc.record(
  {
    fanOn: fc.boolean(),
    level: small,
    min: small,
    max: small,
    target: fc.record({ value: fc.integer({ min: 15, max: 25 }), ac: fc.constantFrom(200, 202, 400), av: fc.integer({ min: 1, max: 12 }) }),
    wifi: fc.record({ ssid: fc.constantFrom("home", "lab"), channel: fc.integer({ min: 1, max: 3 }) }),
  },
  { requiredKeys: [] },
);
const after = fc.integer({ min: 0, max: 240_000 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("desired" as const), patch: desiredPatch, after }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("reported" as const), patch: reportedPatch, after }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("tags" as const), patch: fc.record({ building: fc.constantFrom("43", "44") }), after }) },
);

/** The clean stream of one device: a full replace first (as after provisioning), then the changes. */
function cleanStream(deviceId: string, ops: readonly Op[]): ReceivedEvent[] {
  const twin = new FixtureTwin(deviceId);
  const events = [twin.replace()];
  for (const o of ops) {
    twin.tick(o.after);
    events.push(o.kind === "desired" ? twin.setDesired(o.patch) : o.kind === "reported" ? twin.report(o.patch) : twin.setTags(o.patch));
  }
  return events;
}

/** At-least-once delivery: re-sent series (in order) and duplicated single events. */
const delivery = (events: readonly ReceivedEvent[]) =>
  fc.array(fc.tuple(fc.nat(events.length - 1), fc.nat(events.length - 1), fc.boolean()), { maxLength: 4 }).map((faults) => {
    let out = [...events];
    for (const [a, b, single] of faults) {
      const i = Math.min(a, b, out.length - 1);
      const j = Math.min(Math.max(a, b), out.length - 1);
      out = single ? [...out.slice(0, i + 1), out[i]!, ...out.slice(i + 1)] : [...out.slice(0, j + 1), ...out.slice(i, j + 1), ...out.slice(j + 1)];
    }
    return out;
  });

/** IoT Hub may notify several changes as one event: later patch wins, versions are the last. */
function coalesce(events: readonly ReceivedEvent[], cuts: readonly boolean[]): ReceivedEvent[] {
  const out: ReceivedEvent[] = [];
  events.forEach((event, i) => {
    const last = out[out.length - 1];
    const composed = i > 1 && cuts[i] && last && last.properties.opType === "updateTwin" && event.properties.opType === "updateTwin"
      ? composePatches(last.body as JsonObject, event.body as JsonObject)
      : undefined;
    if (composed && last) out[out.length - 1] = { ...event, body: composed };
    else out.push(event);
  });
  return out;
}

/**
 * One patch with the effect of `first` then `second` (a deletion stays a deletion), or undefined
 * where no single merge patch can say it (an object deleted, then set again: merging would revive
 * the deleted keys) — there the two events stay apart.
 */
function composePatches(first: JsonObject, second: JsonObject): JsonObject | undefined {
  const out: JsonObject = { ...first };
  for (const [key, value] of Object.entries(second)) {
    const before = out[key];
    if (isJsonObject(value) && before === null) return undefined;
    if (isJsonObject(value) && isJsonObject(before)) {
      const inner = composePatches(before, value);
      if (inner === undefined) return undefined;
      out[key] = inner;
    } else out[key] = value;
  }
  return out;
}

async function deliver(db: Database, events: readonly ReceivedEvent[], batchSizes: readonly number[]): Promise<void> {
  let i = 0;
  let b = 0;
  while (i < events.length) {
    const size = Math.max(1, batchSizes[b++ % batchSizes.length] ?? 1);
    const { messages, triggerMetadata } = await toTriggerInput(events.slice(i, i + size));
    await reconcileTwinChanges(messages, triggerMetadata, { db, policy, clock: () => new Date("2026-02-01T00:00:00Z") });
    i += size;
  }
}

async function outcome(db: Database, deviceId: string) {
  const records = await db.query(
    `SELECT path, reported_path, compare, state, desired, reported, desired_version, desired_since, state_since, stale_at
       FROM property_records WHERE device_id = $1 ORDER BY path`,
    [deviceId],
  );
  const history = await db.query(
    "SELECT path, from_state, to_state, cause, at, desired_version, desired, reported FROM property_history WHERE device_id = $1 ORDER BY id",
    [deviceId],
  );
  const device = await db.query("SELECT state, state_since, stale_at, counts, tags FROM devices WHERE device_id = $1", [deviceId]);
  return { records: records.rows, history: history.rows, device: device.rows };
}

async function storedTwin(db: Database, deviceId: string) {
  const rows = await db.query<{ version: unknown; tags: JsonObject; desired: JsonObject; reported: JsonObject }>(
    "SELECT version, tags, desired, reported FROM twins WHERE device_id = $1",
    [deviceId],
  );
  const row = rows.rows[0];
  // Metadata timestamps of keys merged by coalescing are the later event's; compare the values.
  const strip = (section: JsonObject | undefined): JsonObject =>
    Object.fromEntries(Object.entries(section ?? {}).filter(([k]) => k !== "$metadata").map(([k, v]) => [k, isJsonObject(v) ? strip(v) : v]));
  return row && { version: Number(row.version), tags: row.tags, desired: strip(row.desired), reported: strip(row.reported) };
}

describe("reconcile under IoT Hub's delivery semantics (property-based)", () => {
  let clean: Database;
  let messy: Database;
  let run = 0;
  beforeAll(async () => {
    [clean, messy] = await Promise.all([openTestPglite(), openTestPglite()]);
  });
  afterAll(async () => {
    await Promise.all([clean.close(), messy.close()]);
  });

  test(`re-sent series and duplicates, in any batching, give the clean stream's records and history (${RUNS} streams)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 12 }).chain((ops) => {
          const events = cleanStream("x", ops);
          return fc.tuple(fc.constant(ops), delivery(events), fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 4 }));
        }),
        async ([ops, deliveredTemplate, batchSizes]) => {
          const deviceId = `dev-${run++}`;
          const events = cleanStream(deviceId, ops);
          // Same faults, this device's id: map each delivered template event back by sequence number.
          const delivered = deliveredTemplate.map((e) => events[e.sequenceNumber]!);
          await deliver(clean, events, [events.length]);
          await deliver(messy, delivered, batchSizes);
          expect(await outcome(messy, deviceId)).toEqual(await outcome(clean, deviceId));
        },
      ),
      { numRuns: RUNS },
    );
  });

  test(`coalesced events give the clean stream's stored twin (${Math.ceil(RUNS / 4)} streams)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 2, maxLength: 12 }), fc.array(fc.boolean(), { minLength: 14, maxLength: 14 }), async (ops, cuts) => {
        const deviceId = `co-${run++}`;
        const events = cleanStream(deviceId, ops);
        await deliver(clean, events, [events.length]);
        await deliver(messy, coalesce(events, cuts), [3]);
        expect(await storedTwin(messy, deviceId)).toEqual(await storedTwin(clean, deviceId));
      }),
      { numRuns: Math.ceil(RUNS / 4) },
    );
  });
});

/**
 * Dead letters under at-least-once delivery: a batch whose COMMIT went through but whose
 * acknowledgement was lost is delivered again, and a crashed consumer replays the stream from its
 * last checkpoint. Each event is stored as a dead letter once, whatever the number of deliveries.
 */
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { toTriggerInput } from "../../local/host/toTriggerInput";
import { decodeTwinChanges, type DecodedBatch } from "../../shared/events/decodeTwinChanges";
import { parsePolicy } from "../../shared/policy/Policy";
import { reconcileDecoded, reconcileTwinChanges } from "../../shared/reconcile";
import type { Database } from "../../shared/store/Database";
import { FixtureTwin } from "../fixtures/twinEvents";
import { testDatabases, truncateAll } from "../support/testDatabases";

const policy = parsePolicy({ staleAfter: "10m" });
const clock = () => new Date("2026-01-01T00:05:00.000Z");

/** A device's good events, a body that is not JSON, and an event whose desired metadata the store cannot hold. */
function mixedBatch(deviceId: string, firstSequence: number): ReceivedEvent[] {
  const twin = new FixtureTwin(deviceId);
  const notJson = { ...twin.tick(1000).setDesired({ a: 1 }), body: "{not json" };
  const poison = new FixtureTwin(`${deviceId}-poison`).setDesired({ interval: 30 });
  ((poison.body as { properties: { desired: { $metadata: { interval: Record<string, unknown> } } } }).properties.desired.$metadata.interval).$lastUpdatedVersion = 1.5;
  return [twin.replace(), notJson, poison, twin.tick(1000).setDesired({ b: 2 })].map((e, i) => ({ ...e, sequenceNumber: firstSequence + i }));
}

describe.each(testDatabases)("dead letters on $name", ({ open }) => {
  let db: Database;
  beforeAll(async () => {
    db = await open();
  });
  beforeEach(async () => {
    await truncateAll(db);
  });
  afterAll(async () => {
    await db.close();
  });

  const deadLetterRows = async () => (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM dead_letters")).rows[0]?.n;
  const deliver = async (events: ReceivedEvent[]) => {
    const { messages, triggerMetadata } = await toTriggerInput(events);
    return reconcileTwinChanges(messages, triggerMetadata, { db, policy, clock });
  };

  test("stores a batch's dead letters once when the batch is delivered again after its acknowledgement was lost", async () => {
    const batch = mixedBatch("dl-1", 40);
    const first = await deliver(batch);
    expect(first.deadLettered).toBe(2);
    expect(await deadLetterRows()).toBe(2);
    const again = await deliver(batch);
    expect(again.deadLettered).toBe(2); // reported again, stored once
    expect(await deadLetterRows()).toBe(2);
  });

  test("stores each dead letter once when a crashed consumer replays the whole stream", async () => {
    const stream = [...mixedBatch("dl-2", 0), ...mixedBatch("dl-3", 4), ...mixedBatch("dl-4", 8)];
    for (let i = 0; i < stream.length; i += 4) await deliver(stream.slice(i, i + 4));
    expect(await deadLetterRows()).toBe(6);
    // The checkpoint was lost: everything again, cut into other batches.
    for (let i = 0; i < stream.length; i += 5) await deliver(stream.slice(i, i + 5));
    expect(await deadLetterRows()).toBe(6);
  });

  test("tells apart events without sequence numbers by their content, and stores each once", async () => {
    const twin = new FixtureTwin("dl-5");
    const events = [1, 2].map((n) => ({ ...twin.tick(1000).setDesired({ n }), body: `{broken ${n}` }));
    const { messages, triggerMetadata } = await toTriggerInput(events);
    const decoded = decodeTwinChanges(messages, triggerMetadata);
    for (const d of decoded.deadLetters) d.sequenceNumber = undefined;
    await reconcileDecoded(decoded, { db, policy, clock });
    await reconcileDecoded(decoded, { db, policy, clock });
    expect(await deadLetterRows()).toBe(2);
  });

  test("stores a dead letter whose text the store cannot hold as it is: escaped, capped, and saying so", async () => {
    const decoded: DecodedBatch = {
      events: [],
      lifecycle: [],
      ignored: 0,
      deadLetters: [{ index: 0, reason: `bad \u0000 ${"x".repeat(100_000)}`, deviceId: "dev\u0000ice", partitionId: "0", sequenceNumber: 7, raw: { body: "fine" } }],
    };
    const result = await reconcileDecoded(decoded, { db, policy, clock });
    expect(result.deadLettered).toBe(1);
    const { rows } = await db.query<{ device_id: string; reason: string }>("SELECT device_id, reason FROM dead_letters");
    expect(rows).toHaveLength(1);
    expect(rows[0]?.device_id).toBe("dev\\u0000ice");
    expect(rows[0]?.reason.length).toBeLessThan(2100);
    expect(rows[0]?.reason).toMatch(/^bad \\u0000 x+… \[truncated: \d+ characters\]$/);
  });

  test("keeps a minimal row naming the failure when the raw event itself cannot be stored", async () => {
    const decoded: DecodedBatch = {
      events: [],
      lifecycle: [],
      ignored: 0,
      // Not what the decoder makes (it escapes NUL): a raw event from some other path that slipped through.
      deadLetters: [{ index: 3, reason: "body is not JSON", deviceId: "dev-x", partitionId: "1", sequenceNumber: 9, raw: { body: "nul \u0000 inside" } }],
    };
    const result = await reconcileDecoded(decoded, { db, policy, clock });
    expect(result.deadLettered).toBe(1);
    const { rows } = await db.query<{ reason: string; raw: { unstorable?: boolean; index?: number; sha256?: string } }>("SELECT reason, raw FROM dead_letters");
    expect(rows).toHaveLength(1);
    expect(rows[0]?.reason).toMatch(/^the dead letter could not be stored whole \(.*\); its reason was: body is not JSON$/);
    expect(rows[0]?.raw).toMatchObject({ unstorable: true, index: 3, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    await reconcileDecoded(decoded, { db, policy, clock });
    expect(await deadLetterRows()).toBe(1);
  });
});

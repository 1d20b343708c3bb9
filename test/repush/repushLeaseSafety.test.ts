/**
 * Re-push lease safety in real time (issue: REPUSH_LEASE=2s at 20 ops/s pushed 25 devices twice,
 * 2.2 s apart, both recorded as attempt 1): timer runs with a 2 s lease, overlapping, against a
 * slow hub — the emulator's hub model behind the product's azure-iothub adapter, each call taking
 * 60 ms of real time (`inProcessTwinRegistry` with `requestMs` and `responseMs`; its limits are at the top of
 * repushSupport.ts). Each run has its own 20 ops/s token bucket, as separate hosts would.
 * On PGlite, and on PostgreSQL when DATABASE_URL is set.
 *
 * Patches are counted where devices see them: the emulator's desired notifications, with time.
 */
import { systemLimiterClock, rateLimitedTwinRegistry, TokenBucket } from "../../shared/hub/TokenBucket";
import { parsePolicy } from "../../shared/policy/Policy";
import { repushStaleDesired, type RepushRunResult } from "../../shared/repush";
import type { Database } from "../../shared/store/Database";
import { IotHub } from "../../local/emulator/IotHub";
import { testDatabases } from "../support/testDatabases";
import { clearStore, device, history, inProcessTwinRegistry, MINUTE, seedFromHub, testSettings } from "./repushSupport";

const DEVICES = 40;
const LEASE_MS = 2000;
const BACKOFF_BASE_MS = 15 * MINUTE;

jest.setTimeout(30_000);

describe.each(testDatabases)("re-push lease safety on $name", ({ open }) => {
  let db: Database;
  beforeAll(async () => {
    db = await open();
  });
  afterAll(() => db.close());
  beforeEach(() => clearStore(db));

  it("never patches a device twice within its back-off when runs with a 2 s lease overlap on a slow hub, and records each patch once", async () => {
    // Stale one second after being set: a re-read right after a patch finds the property due again,
    // so only the lease and the back-off stand between a device and a second patch.
    const policy = parsePolicy({ staleAfter: "1s" });
    const hub = new IotHub({ throttling: "off" });
    const patches = new Map<string, number[]>();
    hub.onDesiredChange((address) => patches.set(address.deviceId, [...(patches.get(address.deviceId) ?? []), Date.now()]));
    const ids = Array.from({ length: DEVICES }, (_, i) => `lease-${String(i).padStart(2, "0")}`);
    for (const id of ids) {
      hub.registry.createDevice(id);
      hub.registry.updateTwin(id, { properties: { desired: { interval: 30 } } });
    }
    await seedFromHub(db, inProcessTwinRegistry(hub), policy, ids.map(device), new Date().toISOString());
    patches.clear();
    await sleep(1100);

    const slowHub = inProcessTwinRegistry(hub, [], { requestMs: 30, responseMs: 30 });
    const run = (owner: string): Promise<RepushRunResult> =>
      repushStaleDesired({
        db,
        policy,
        registry: rateLimitedTwinRegistry(slowHub, new TokenBucket({ ratePerSecond: 20, clock: systemLimiterClock })),
        settings: { ...testSettings, leaseMs: LEASE_MS, backoffBaseMs: BACKOFF_BASE_MS, maxDevicesPerRun: DEVICES },
        owner,
        concurrency: 4,
        batchSize: 25,
      });
    // A second run starts just after the first one's lease ran out, a third after the second's.
    const runs = await Promise.all([run("first"), sleep(LEASE_MS + 100).then(() => run("second")), sleep(2 * LEASE_MS + 200).then(() => run("third"))]);

    const patched = [...patches.entries()];
    expect(patched.length).toBeGreaterThan(DEVICES / 2);
    // The whole test lasts seconds; the shortest back-off is half the 15-minute base: one patch per device at most.
    expect(patched.filter(([, times]) => times.length > 1)).toEqual([]);
    for (const id of ids) {
      const rows = (await history(db, id)).filter((r) => r.cause === "repush");
      const counted = rows.filter((r) => r.detail?.attempt != null);
      const unanswered = rows.some((r) => r.detail?.outcome === "unanswered");
      const sent = patches.get(id)?.length ?? 0;
      // Never recorded twice; and recorded whenever it was sent, unless the answer was cut off at the lease's end.
      expect({ id, counted: counted.map((r) => r.detail?.attempt) }).toEqual({ id, counted: unanswered ? [] : Array(sent).fill(1) });
      const record = await db.query<{ attempts: number }>("SELECT attempts FROM property_records WHERE device_id = $1 AND path = 'interval'", [id]);
      expect({ id, attempts: record.rows[0]?.attempts }).toEqual({ id, attempts: counted.length });
    }
    // Runs that stopped for their lease left devices due rather than overrunning it.
    expect(runs.reduce((n, r) => n + r.leftDue, 0)).toBeGreaterThan(0);
  });

  it("backs off without counting an attempt when a patch's answer has not come by the end of the lease's call time", async () => {
    const policy = parsePolicy({ staleAfter: "1s" });
    const hub = new IotHub({ throttling: "off" });
    const patches: number[] = [];
    hub.onDesiredChange(() => patches.push(Date.now()));
    hub.registry.createDevice("mute");
    hub.registry.updateTwin("mute", { properties: { desired: { interval: 30 } } });
    await seedFromHub(db, inProcessTwinRegistry(hub), policy, [device("mute")], new Date().toISOString());
    patches.length = 0;
    await sleep(1100);

    // The hub applies each call at once but answers only after 3 s, longer than the 1 s lease.
    const mute = inProcessTwinRegistry(hub, [], { responseMs: 3000 });
    const fast = inProcessTwinRegistry(hub);
    const settings = { ...testSettings, leaseMs: 1000, backoffBaseMs: BACKOFF_BASE_MS };
    const first = await repushStaleDesired({
      db,
      policy,
      registry: { getTwin: (key, options) => fast.getTwin(key, options), updateTwin: (key, patch, etag, options) => mute.updateTwin(key, patch, etag, options) },
      settings,
      owner: "first",
    });
    const second = await repushStaleDesired({ db, policy, registry: fast, settings, owner: "second" });

    expect(patches).toHaveLength(1);
    expect(first).toMatchObject({ claimed: 1, accepted: 0, attempts: 0, leaseLost: 0 });
    expect(second.claimed).toBe(0);
    const rows = (await history(db, "mute")).filter((r) => r.cause === "repush");
    expect(rows.map((r) => [r.detail?.outcome, r.detail?.attempt])).toEqual([["unanswered", null]]);
    const record = await db.query<{ attempts: number; next_attempt_at: Date | null }>("SELECT attempts, next_attempt_at FROM property_records WHERE device_id = 'mute'");
    expect(record.rows[0]?.attempts).toBe(0);
    // Equal jitter: at least half the 15-minute base from now.
    expect(new Date(record.rows[0]?.next_attempt_at as Date).getTime()).toBeGreaterThan(Date.now() + 7 * MINUTE);
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

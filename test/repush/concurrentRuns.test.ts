/**
 * Timer runs at once on real PostgreSQL (DATABASE_URL; CI sets it): claims with FOR UPDATE SKIP
 * LOCKED and a lease, so no device is re-pushed twice. Runs in a schema of its own (dropped after),
 * since other suites use the same database at the same time.
 */
import { rateLimitedTwinRegistry, TokenBucket } from "../../shared/hub/TokenBucket";
import type { TwinRegistry } from "../../shared/hub/TwinRegistry";
import { repushStaleDesired } from "../../shared/repush";
import type { Database } from "../../shared/store/Database";
import { claimDueDevices } from "../../shared/store/repushStore";
import { openTestPostgres } from "../support/testDatabases";
import { clearStore, device, fakeClock, inProcessHub, inProcessTwinRegistry, MINUTE, seedFromHub, testPolicy, testSettings } from "./repushSupport";

const url = process.env.DATABASE_URL;

if (!url) {
  it.skip("two timer runs at once on PostgreSQL — skipped: DATABASE_URL is not set (CI sets postgresql://postgres@127.0.0.1:5432/test)", () => undefined);
} else {
  describe("concurrent re-push runs on PostgreSQL", () => {
    let db: Database;
    beforeAll(async () => {
      db = await openTestPostgres(url, { max: 8 });
    });
    afterAll(() => db?.close());
    beforeEach(() => clearStore(db));

    async function fleet(count: number) {
      const clock = fakeClock();
      const hub = inProcessHub(clock);
      const calls: Array<{ op: "get" | "update"; deviceId: string; at: number }> = [];
      const inner = inProcessTwinRegistry(hub, calls);
      // Real (small) delays, so the runs' hub calls and transactions interleave.
      const slow: TwinRegistry = {
        getTwin: async (key) => {
          await new Promise((r) => setTimeout(r, 1));
          return inner.getTwin(key);
        },
        updateTwin: async (key, patch, etag) => {
          await new Promise((r) => setTimeout(r, 1));
          return inner.updateTwin(key, patch, etag);
        },
      };
      const keys = Array.from({ length: count }, (_, i) => device(`pg-${String(i).padStart(3, "0")}`));
      for (const key of keys) {
        hub.registry.createDevice(key.deviceId);
        hub.registry.updateTwin(key.deviceId, { properties: { desired: { interval: 30 } } });
      }
      await seedFromHub(db, inner, testPolicy, keys, clock.date().toISOString());
      calls.length = 0;
      clock.advance(11 * MINUTE);
      return { clock, calls, registry: slow };
    }

    it("never re-pushes a device twice when three timer runs start at once", async () => {
      const { clock, calls, registry } = await fleet(60);
      const runs = await Promise.all(
        ["a", "b", "c"].map((owner) =>
          repushStaleDesired({
            db,
            policy: testPolicy,
            registry: rateLimitedTwinRegistry(registry, new TokenBucket({ ratePerSecond: 10_000, burst: 100, clock })),
            settings: { ...testSettings, maxDevicesPerRun: 30 },
            clock: () => clock.date(),
            owner,
            concurrency: 3,
          }),
        ),
      );

      expect(runs.reduce((n, r) => n + r.claimed, 0)).toBe(60);
      const updates = calls.filter((c) => c.op === "update").map((c) => c.deviceId);
      expect(updates).toHaveLength(60);
      expect(new Set(updates).size).toBe(60);
      const history = await db.query<{ device_id: string; n: number }>(
        "SELECT device_id, count(*)::int AS n FROM property_history WHERE cause = 'repush' GROUP BY device_id HAVING count(*) <> 1",
      );
      expect(history.rows).toEqual([]);
    });

    it("skips devices leased by a run that died until the lease expires", async () => {
      const { clock, calls, registry } = await fleet(5);
      const leased = await claimDueDevices(db, { now: clock.date().toISOString(), limit: 2, owner: "crashed", leaseMs: 5 * MINUTE });
      expect(leased).toHaveLength(2);
      const deps = {
        db,
        policy: testPolicy,
        registry: rateLimitedTwinRegistry(registry, new TokenBucket({ ratePerSecond: 10_000, burst: 100, clock })),
        settings: { ...testSettings, backoffBaseMs: 30 * MINUTE },
        clock: () => clock.date(),
      };

      expect((await repushStaleDesired(deps)).claimed).toBe(3);
      clock.advance(5 * MINUTE);
      expect((await repushStaleDesired(deps)).claimed).toBe(2);
      expect(new Set(calls.filter((c) => c.op === "update").map((c) => c.deviceId)).size).toBe(5);
    });
  });
}

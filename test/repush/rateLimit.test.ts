import { rateLimitedTwinRegistry, TokenBucket } from "../../shared/hub/TokenBucket";
import { repushStaleDesired } from "../../shared/repush";
import { openTestPglite } from "../support/testDatabases";
import { busiestSecond, device, fakeClock, inProcessHub, inProcessTwinRegistry, MINUTE, seedFromHub, testPolicy, testSettings } from "./repushSupport";


it("never lets the hub see more twin operations per second than configured", async () => {
  const db = await openTestPglite();
  try {
    const clock = fakeClock();
    const hub = inProcessHub(clock);
    const calls: Array<{ op: "get" | "update"; deviceId: string; at: number }> = [];
    const registry = inProcessTwinRegistry(hub, calls);
    const keys = Array.from({ length: 40 }, (_, i) => device(`rate-${String(i).padStart(2, "0")}`));
    for (const key of keys) {
      hub.registry.createDevice(key.deviceId);
      hub.registry.updateTwin(key.deviceId, { properties: { desired: { interval: 30 } } });
    }
    await seedFromHub(db, registry, testPolicy, keys, clock.date().toISOString());
    calls.length = 0;
    clock.advance(11 * MINUTE);

    const result = await repushStaleDesired({
      db,
      policy: testPolicy,
      registry: rateLimitedTwinRegistry(registry, new TokenBucket({ ratePerSecond: 10, clock })),
      settings: testSettings,
      clock: () => clock.date(),
      concurrency: 4,
    });

    expect(result).toMatchObject({ claimed: 40, pushed: 40, throttled: false });
    expect(calls).toHaveLength(80);
    expect(busiestSecond(calls.map((c) => c.at))).toBeLessThanOrEqual(10);
    // and it is the configured pace, not a slower one: 80 calls at 10/s take 7.9 s of (fake) time
    expect(Math.max(...calls.map((c) => c.at)) - Math.min(...calls.map((c) => c.at))).toBe(7_900);
  } finally {
    await db.close();
  }
});

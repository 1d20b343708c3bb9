import { rateLimitedTwinRegistry, rateLimiterOf, TokenBucket } from "../../shared/hub/TokenBucket";
import type { TwinRegistry } from "../../shared/hub/TwinRegistry";
import { desiredPatch } from "../../shared/repush/desiredPatch";
import { repushBackoffMs } from "../../shared/repush/repushBackoff";
import { busiestSecond, fakeClock } from "./repushSupport";


describe("TokenBucket", () => {
  it("spaces calls evenly at the configured rate, concurrent callers included", async () => {
    const clock = fakeClock(0);
    const bucket = new TokenBucket({ ratePerSecond: 10, clock });
    const times: number[] = [];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 10; i++) {
          await bucket.take();
          times.push(clock.now());
        }
      }),
    );
    expect(times).toHaveLength(40);
    expect(busiestSecond(times)).toBeLessThanOrEqual(10);
    expect(Math.max(...times)).toBe(3900);
  });

  it("lets a burst through at once, then the rate", async () => {
    const clock = fakeClock(0);
    const bucket = new TokenBucket({ ratePerSecond: 5, burst: 3, clock });
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      await bucket.take();
      times.push(clock.now());
    }
    expect(times).toEqual([0, 0, 0, 200, 400]);
  });

  it("after slowDown pauses, then runs at the lowered rate, then recovers", async () => {
    const clock = fakeClock(0);
    const bucket = new TokenBucket({ ratePerSecond: 10, clock });
    await bucket.take();
    bucket.slowDown({ pauseMs: 10_000, factor: 2, forMs: 5_000 });
    expect(bucket.currentRatePerSecond()).toBe(5);
    await bucket.take();
    expect(clock.now()).toBeGreaterThanOrEqual(10_000);
    const start = clock.now();
    await bucket.take();
    expect(clock.now() - start).toBe(200);
    clock.advance(10_000);
    expect(bucket.currentRatePerSecond()).toBe(10);
  });

  it("rejects a wait when its signal aborts", async () => {
    const bucket = new TokenBucket({ ratePerSecond: 1 });
    await bucket.take();
    const controller = new AbortController();
    const waiting = bucket.take({ signal: controller.signal });
    controller.abort(new Error("stop"));
    await expect(waiting).rejects.toThrow("stop");
  });

  it("names the option that is wrong", () => {
    expect(() => new TokenBucket({ ratePerSecond: 0 })).toThrow(/ratePerSecond/);
    expect(() => new TokenBucket({ ratePerSecond: 1, burst: 0 })).toThrow(/burst/);
  });
});

describe("rateLimitedTwinRegistry", () => {
  const twin = { deviceId: "d", moduleId: null, version: 1, etag: "e", tags: {}, desired: {}, reported: {} };

  it("slows the bucket down when the hub answers 429, using Retry-After when given", async () => {
    const clock = fakeClock(0);
    const bucket = new TokenBucket({ ratePerSecond: 10, clock });
    const hub: TwinRegistry = {
      getTwin: () => Promise.reject(Object.assign(new Error("throttled"), { name: "ThrottlingError", retryAfterMs: 30_000 })),
      updateTwin: () => Promise.resolve(twin),
    };
    const limited = rateLimitedTwinRegistry(hub, bucket);
    await expect(limited.getTwin({ deviceId: "d", moduleId: null })).rejects.toThrow("throttled");
    await limited.updateTwin({ deviceId: "d", moduleId: null }, {}, "e");
    expect(clock.now()).toBeGreaterThanOrEqual(30_000);
  });

  it("does not wrap a registry twice", () => {
    const bucket = new TokenBucket({ ratePerSecond: 10 });
    const hub: TwinRegistry = { getTwin: () => Promise.resolve(twin), updateTwin: () => Promise.resolve(twin) };
    const once = rateLimitedTwinRegistry(hub, bucket);
    expect(rateLimitedTwinRegistry(once, new TokenBucket({ ratePerSecond: 1 }))).toBe(once);
    expect(rateLimiterOf(once)).toBe(bucket);
  });
});

describe("repushBackoffMs", () => {
  const settings = { baseMs: 120_000, capMs: 3_600_000 };

  it("doubles from the base with each attempt, up to the cap", () => {
    const nominal = [1, 2, 3, 4, 5, 6, 7].map((n) => repushBackoffMs(n, settings, () => 1));
    expect(nominal).toEqual([120_000, 240_000, 480_000, 960_000, 1_920_000, 3_600_000, 3_600_000]);
  });

  it("jitters into half to all of the nominal delay", () => {
    expect(repushBackoffMs(1, settings, () => 0)).toBe(60_000);
    expect(repushBackoffMs(1, settings, () => 0.5)).toBe(90_000);
    expect(repushBackoffMs(100, settings, () => 0.999)).toBeLessThanOrEqual(3_600_000);
  });
});

describe("desiredPatch", () => {
  const desired = {
    $version: 7,
    $metadata: { $lastUpdated: "2026-01-01T00:00:00Z" },
    radio: { channel: 6, power: 20 },
    name: "x",
    config: { $note: "kept out", limits: [1, 2] },
  };

  it("rewrites exactly the given paths as a nested object", () => {
    expect(desiredPatch(desired, ["radio.channel", "name"])).toEqual({ name: "x", radio: { channel: 6 } });
  });

  it("takes whole objects for object properties and leaves $ keys and missing paths out", () => {
    expect(desiredPatch(desired, ["config", "gone.path", "$version"])).toEqual({ config: { limits: [1, 2] } });
  });
});

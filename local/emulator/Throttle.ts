import type { Clock } from "./Clock";

export type ThrottledOperation = "twinRead" | "twinUpdate" | "query";
export type ThrottleTier = "S1" | "S2" | "S3" | "off";

/** Per-second rates of each tier for `units` units (iothub-facts §4; Free behaves like S1). */
export function tierRates(tier: Exclude<ThrottleTier, "off">, units = 1): Record<ThrottledOperation, number> {
  switch (tier) {
    case "S1":
      return { twinRead: 100, twinUpdate: 50, query: (20 * units) / 60 };
    case "S2":
      return { twinRead: Math.max(100, 10 * units), twinUpdate: Math.max(50, 5 * units), query: (20 * units) / 60 };
    case "S3":
      return { twinRead: 500 * units, twinUpdate: 250 * units, query: (1000 * units) / 60 };
  }
}

/** A token bucket on an injected clock: holds at most `capacity` tokens, refilled at `ratePerSecond`. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly ratePerSecond: number,
    readonly capacity: number,
    private readonly clock: Clock,
  ) {
    this.tokens = capacity;
    this.last = clock.now();
  }

  /** Takes one token if there is one. */
  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  available(): number {
    this.refill();
    return this.tokens;
  }

  private refill(): void {
    const now = this.clock.now();
    if (now > this.last) {
      this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.ratePerSecond);
    }
    this.last = now;
  }
}

/**
 * IoT Hub's per-hub quotas as token buckets. Capacity is one second's worth for per-second quotas
 * and one minute's worth for queries (20/min on S1), so a burst up to the quota passes and the next
 * request is refused. Real IoT Hub first queues (traffic shaping) and only later answers 429; this
 * refuses at once, which is the behaviour clients must survive anyway.
 */
export class Throttle {
  private buckets: Record<ThrottledOperation, TokenBucket> | null = null;
  private currentTier: ThrottleTier = "off";
  readonly refused: Record<ThrottledOperation, number> = { twinRead: 0, twinUpdate: 0, query: 0 };

  constructor(
    private readonly clock: Clock,
    tier: ThrottleTier = "S1",
    private readonly units = 1,
  ) {
    this.setTier(tier);
  }

  get tier(): ThrottleTier {
    return this.currentTier;
  }

  setTier(tier: ThrottleTier): void {
    this.currentTier = tier;
    if (tier === "off") {
      this.buckets = null;
      return;
    }
    const rates = tierRates(tier, this.units);
    this.buckets = {
      twinRead: new TokenBucket(rates.twinRead, rates.twinRead, this.clock),
      twinUpdate: new TokenBucket(rates.twinUpdate, rates.twinUpdate, this.clock),
      query: new TokenBucket(rates.query, rates.query * 60, this.clock),
    };
  }

  /** True when the operation may proceed (and consumes a token); false means answer 429. */
  tryAcquire(operation: ThrottledOperation): boolean {
    if (this.buckets === null) return true;
    if (this.buckets[operation].tryTake()) return true;
    this.refused[operation] += 1;
    return false;
  }

  /** Device-side operations draw from the same quota but are never refused (stand-in for traffic shaping). */
  consume(operation: ThrottledOperation): void {
    this.buckets?.[operation].tryTake();
  }
}

import { sleep } from "../sleep";
import { metrics, type TokenBucketName } from "../telemetry/metrics";
import { hubErrorKind, type TwinRegistry } from "./TwinRegistry";

/** Time as the limiter sees it: injectable so tests run on a fake clock (no real waiting). */
export interface LimiterClock {
  now(): number;
  /** Resolves after `ms` (rejects with the signal's reason when it aborts first). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemLimiterClock: LimiterClock = { now: () => Date.now(), sleep };

export interface TokenBucketOptions {
  /** Tokens added per second: the sustained rate (HUB_TWIN_OPS_PER_SECOND). */
  ratePerSecond: number;
  /**
   * Tokens the bucket holds at most (default 1). With 1, calls are spaced evenly, so no window of
   * one second ever sees more than `ratePerSecond` calls; a larger burst trades that for latency.
   */
  burst?: number;
  clock?: LimiterClock;
  /** Which quota this bucket guards, for the token-wait metric (default `twin_ops`). */
  name?: TokenBucketName;
}

export interface SlowDown {
  /** No token is handed out before now + pauseMs (IoT Hub's 429 text says "Wait 10 seconds"). */
  pauseMs: number;
  /** The rate is divided by this… */
  factor: number;
  /** …for this long, then returns to normal. */
  forMs: number;
}

/** After a 429: pause 10 s (or Retry-After), then half rate for a minute. */
export const DEFAULT_SLOW_DOWN: SlowDown = { pauseMs: 10_000, factor: 2, forMs: 60_000 };

/**
 * The global rate limit of every IoT Hub twin operation (controller-runtime's "bucket" limiter).
 * Callers reserve the next free slot, so concurrent callers are served in order without busy
 * waiting; `slowDown` lowers the rate for a while after the hub answered 429.
 */
export class TokenBucket {
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly name: TokenBucketName;
  private readonly clock: LimiterClock;
  /** Tokens at `last`, possibly negative: reservations not yet due. */
  private tokens: number;
  private last: number;
  private pausedUntil = 0;
  private slowUntil = 0;
  private slowFactor = 1;

  constructor(options: TokenBucketOptions) {
    if (!(options.ratePerSecond > 0)) throw new RangeError(`ratePerSecond must be above 0 (got ${options.ratePerSecond})`);
    const burst = options.burst ?? 1;
    if (!(burst >= 1)) throw new RangeError(`burst must be at least 1 (got ${burst})`);
    this.ratePerSecond = options.ratePerSecond;
    this.burst = burst;
    this.clock = options.clock ?? systemLimiterClock;
    this.name = options.name ?? "twin_ops";
    this.tokens = burst;
    this.last = this.clock.now();
  }

  /** The rate in force now (lower while slowed down after a 429). */
  currentRatePerSecond(): number {
    return this.clock.now() < this.slowUntil ? this.ratePerSecond / this.slowFactor : this.ratePerSecond;
  }

  /** Waits for a token and takes it. */
  async take(options: { signal?: AbortSignal } = {}): Promise<void> {
    const wait = this.reserve();
    metrics.tokenWait(wait / 1000, this.name);
    if (wait > 0) await this.clock.sleep(wait, options.signal);
  }

  /** Lowers the rate after a 429: a pause, then `rate / factor` for `forMs`. */
  slowDown(slowDown: Partial<SlowDown> = {}): void {
    const { pauseMs, factor, forMs } = { ...DEFAULT_SLOW_DOWN, ...slowDown };
    this.refill();
    const now = this.clock.now();
    this.pausedUntil = Math.max(this.pausedUntil, now + pauseMs);
    this.slowUntil = Math.max(this.slowUntil, now + pauseMs + forMs);
    this.slowFactor = Math.max(1, factor);
    // Whatever was saved up is void: the hub just said we were too fast.
    this.tokens = Math.min(this.tokens, 0);
  }

  /** Reserves one token; returns how long the caller must wait for it (ms). */
  private reserve(): number {
    this.refill();
    const now = this.clock.now();
    this.tokens -= 1;
    const pause = Math.max(0, this.pausedUntil - now);
    if (this.tokens >= 0) return pause;
    return pause + (-this.tokens * 1000) / this.currentRatePerSecond();
  }

  private refill(): void {
    const now = this.clock.now();
    // No refill while paused; the slowed rate while slowed down.
    const from = Math.max(this.last, Math.min(now, this.pausedUntil));
    if (now > from) this.tokens = Math.min(this.burst, this.tokens + ((now - from) / 1000) * this.currentRatePerSecond());
    this.last = Math.max(this.last, now);
  }
}

const LIMITER = Symbol("twinReconciler.rateLimiter");

/**
 * The TwinRegistry with every call first taking a token from `bucket`; a 429 from the hub slows the
 * bucket down (Retry-After when the hub sent one). Wrapping an already limited registry returns it.
 */
export function rateLimitedTwinRegistry(registry: TwinRegistry, bucket: TokenBucket): TwinRegistry {
  if (LIMITER in registry) return registry;
  const guarded = async <T>(call: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> => {
    await bucket.take(signal ? { signal } : {});
    try {
      return await call();
    } catch (error) {
      if (hubErrorKind(error) === "throttled") bucket.slowDown(retryAfter(error));
      throw error;
    }
  };
  const limited: TwinRegistry & { [LIMITER]: TokenBucket } = {
    [LIMITER]: bucket,
    getTwin: (key, options = {}) => guarded(() => registry.getTwin(key, options), options.signal),
    updateTwin: (key, patch, etag, options = {}) => guarded(() => registry.updateTwin(key, patch, etag, options), options.signal),
  };
  return limited;
}

/** The bucket a registry was wrapped with, if any. */
export function rateLimiterOf(registry: TwinRegistry): TokenBucket | undefined {
  return LIMITER in registry ? (registry as { [LIMITER]: TokenBucket })[LIMITER] : undefined;
}

function retryAfter(error: unknown): Partial<SlowDown> {
  const ms = typeof error === "object" && error !== null ? (error as { retryAfterMs?: unknown }).retryAfterMs : undefined;
  return typeof ms === "number" && ms > 0 ? { pauseMs: ms } : {};
}

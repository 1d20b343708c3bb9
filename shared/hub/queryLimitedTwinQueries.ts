import { TokenBucket, type LimiterClock } from "./TokenBucket";
import { hubErrorKind, type TwinQueries } from "./TwinRegistry";

/**
 * The hub's query quota (HUB_QUERIES_PER_MINUTE; S1: 20 per minute per unit) as its own token
 * bucket, apart from the twin-op bucket: a query page is one request against the query quota
 * whatever its size. Burst 1, so pages are spaced evenly and no minute ever sees more than the
 * quota; the quota is per hub and shared with every other client, so the setting is a share of it.
 */
export function queryLimiter(queriesPerMinute: number, clock?: LimiterClock): TokenBucket {
  return new TokenBucket({ ratePerSecond: queriesPerMinute / 60, burst: 1, name: "queries", ...(clock ? { clock } : {}) });
}

/**
 * Twin queries behind `bucket`: each page waits for a token first; a 429 pauses the bucket (10 s or
 * the hub's Retry-After) and halves its rate for a minute, then the error goes to the caller.
 */
export function queryLimitedTwinQueries(queries: TwinQueries, bucket: TokenBucket): TwinQueries {
  return {
    async queryTwins(query, options) {
      await bucket.take(options.signal ? { signal: options.signal } : {});
      try {
        return await queries.queryTwins(query, options);
      } catch (error) {
        if (hubErrorKind(error) === "throttled") {
          const ms = (error as { retryAfterMs?: unknown }).retryAfterMs;
          bucket.slowDown(typeof ms === "number" && ms > 0 ? { pauseMs: ms } : {});
        }
        throw error;
      }
    },
  };
}

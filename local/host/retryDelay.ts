import type { RetryOptions, RpcDuration } from "./functionRegistration";

/**
 * Delay before retry number `retryCount` (1-based) under a function's retry policy, in ms.
 * fixedDelay: always `delayInterval`. exponentialBackoff: `minimumInterval` doubled per retry, capped
 * at `maximumInterval` (deterministic: Azure adds a little jitter, the local host does not).
 * The library rounds intervals to whole seconds (`toRpcDuration`), so 0 means "retry at once".
 */
export function retryDelay(options: RetryOptions, retryCount: number): number {
  if (options.strategy === "fixedDelay") return durationMs(options.delayInterval);
  const min = durationMs(options.minimumInterval);
  const max = Math.max(min, durationMs(options.maximumInterval));
  const exponent = Math.min(Math.max(retryCount - 1, 0), 30);
  return Math.min(max, min * 2 ** exponent);
}

/** True while another attempt is allowed after `retryCount` retries (-1 = retry forever). */
export function mayRetry(options: RetryOptions | undefined, retryCount: number): boolean {
  if (options === undefined) return false;
  return options.maxRetryCount === -1 || retryCount < options.maxRetryCount;
}

export function durationMs(duration: RpcDuration | number | undefined): number {
  if (duration === undefined) return 0;
  if (typeof duration === "number") return Math.max(0, duration);
  return Math.max(0, (duration.seconds ?? 0) * 1000 + Math.floor((duration.nanos ?? 0) / 1e6));
}

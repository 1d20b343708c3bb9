/**
 * The one timer wait: resolves after `ms`; when `signal` aborts first (or already has), rejects with
 * the signal's reason, so a caller never carries on as if the time had passed (the limiter must not
 * hand out a token to an aborted call; the re-push tells its own LeaseEnding reason apart).
 * Callers that only want to stop waiting on abort use `sleepOrAbort` (local/host/sleep.ts).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

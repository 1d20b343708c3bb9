export interface BackoffSettings {
  /** Delay after the first attempt (REPUSH_BACKOFF_BASE). */
  baseMs: number;
  /** Longest delay (REPUSH_BACKOFF_CAP). */
  capMs: number;
}

/**
 * Delay before the attempt after attempt number `attempt` (1-based): base·2^(attempt−1), capped,
 * then jittered into [½, 1] of that ("equal jitter", so a fleet that went stale together spreads
 * out but never comes back sooner than half the nominal delay). `random` returns [0, 1).
 */
export function repushBackoffMs(attempt: number, settings: BackoffSettings, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempt - 1);
  const nominal = Math.min(settings.capMs, settings.baseMs * 2 ** Math.min(exponent, 52));
  const r = Math.min(1, Math.max(0, random()));
  return Math.round(nominal / 2 + (nominal / 2) * r);
}

const SHORT = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const ISO = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** setTimeout's longest delay (2^31−1 ms, about 24.8 days): a longer one fires at once. The default bound. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** The longest duration anything here may be (365 days): added to any representable time, still a valid Date. */
export const MAX_DURATION_MS = 365 * 86_400_000;

export interface DurationBounds {
  /** Who is asking, for the message (a setting, a policy field, an option). */
  name?: string;
  /** Shortest accepted, in ms (default 0). */
  minMs?: number;
  /** Longest accepted, in ms (default MAX_TIMER_MS; at most MAX_DURATION_MS). */
  maxMs?: number;
}

/**
 * Parses a duration — `<n>ms|s|m|h|d` (`10m`, `1.5h`) or ISO-8601 (`PT10M`, `P1DT2H`) — to milliseconds,
 * within `bounds`. Throws an Error naming `bounds.name` that says what is accepted.
 */
export function parseDuration(text: string, bounds: DurationBounds = {}): number {
  const ms = parseUnbounded(text);
  const subject = bounds.name ? `${bounds.name} ` : "";
  if (ms === undefined) {
    throw new Error(`${subject}"${shown(text)}" is not a duration: use <number><ms|s|m|h|d> (e.g. "10m") or ISO-8601 (e.g. "PT10M")`);
  }
  const minMs = bounds.minMs ?? 0;
  const maxMs = Math.min(bounds.maxMs ?? MAX_TIMER_MS, MAX_DURATION_MS);
  if (!(ms <= maxMs)) throw new Error(`${subject}"${shown(text)}" is too long: at most ${formatDuration(maxMs)}`);
  if (ms < minMs) throw new Error(`${subject}"${shown(text)}" is too short: at least ${formatDuration(minMs)}`);
  return ms;
}

function parseUnbounded(text: string): number | undefined {
  const trimmed = text.trim();
  const short = SHORT.exec(trimmed);
  if (short) return Math.round(Number(short[1]) * (UNIT_MS[short[2] ?? ""] ?? NaN));
  const iso = ISO.exec(trimmed.toUpperCase());
  if (iso && trimmed.length > 1 && !trimmed.toUpperCase().endsWith("T")) {
    const [, d, h, m, s] = iso;
    if (d || h || m || s) {
      return Math.round((Number(d ?? 0) * 86_400 + Number(h ?? 0) * 3_600 + Number(m ?? 0) * 60 + Number(s ?? 0)) * 1000);
    }
  }
  return undefined;
}

/** A bound in its largest unit, rounded down to a tenth (so it is never above the bound): 365d, 24.8d, 1s, 250ms. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (ms >= size) return `${Math.floor((ms / size) * 10) / 10}${unit}`;
  }
  return `${ms}ms`;
}

function shown(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

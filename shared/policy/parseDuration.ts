const SHORT = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const ISO = /^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a duration — `<n>ms|s|m|h|d` (`10m`, `1.5h`) or ISO-8601 (`PT10M`, `P1DT2H`) — to milliseconds.
 * Throws an Error saying what is accepted when the text is neither.
 */
export function parseDuration(text: string): number {
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
  throw new Error(`"${text}" is not a duration: use <number><ms|s|m|h|d> (e.g. "10m") or ISO-8601 (e.g. "PT10M")`);
}

/**
 * The instants both JavaScript and PostgreSQL's timestamptz represent and print alike: years
 * 0001–9999. IoT Hub itself stamps new twins' `$metadata` with "0001-01-01T00:00:00Z"; JavaScript
 * goes to ±275760 and prints years past 9999 as "+010000-…", which PostgreSQL refuses, and a year
 * before 1 as "-000001-…", which it refuses too.
 */
export const MIN_STORABLE_TIME_MS = Date.parse("0001-01-01T00:00:00.000Z");
export const MAX_STORABLE_TIME_MS = Date.parse("9999-12-31T23:59:59.999Z");

/** A twin timestamp (`$lastUpdated`) as epoch milliseconds when it is a date within years 0001–9999, else undefined. */
export function storableTime(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) || ms < MIN_STORABLE_TIME_MS || ms > MAX_STORABLE_TIME_MS ? undefined : ms;
}

/**
 * ISO-8601 for any sum of times and durations, held within the storable range: a deadline past
 * year 9999 is "never" for every practical purpose, and must not make `toISOString` throw.
 */
export function clampedIsoTime(ms: number): string {
  const bounded = Number.isNaN(ms) ? MAX_STORABLE_TIME_MS : Math.min(MAX_STORABLE_TIME_MS, Math.max(MIN_STORABLE_TIME_MS, ms));
  return new Date(bounded).toISOString();
}

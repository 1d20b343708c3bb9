import { z } from "zod";

/**
 * Timestamps are read back as ISO-8601 UTC text formatted by SQL: cheaper than pg's Date parsing and
 * a round trip through Date (it showed in the reconcile profile), and the same text on pg and PGlite.
 */
export function isoTimeSql(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

/** A column read through `isoTimeSql`. */
export const isoTime = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, "not an ISO-8601 UTC time (read it through isoTimeSql)");

/** `column` as ISO-8601 text named `as`: for a SELECT list or RETURNING. */
export const isoTimeAs = (column: string, as: string): string => `${isoTimeSql(column)} AS ${as}`;

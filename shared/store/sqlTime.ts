import { z } from "zod";

/**
 * The one way the store reads a timestamptz: formatted by SQL as ISO-8601 text in UTC with
 * milliseconds (`isoTime` in the SELECT list), checked by `sqlTime` on the row. Cheaper than pg's
 * Date parsing and a round trip through Date, which showed in the reconcile profile; the text sorts
 * and compares as the instant does (years 0001–9999, storableTime.ts).
 */
export const sqlTime = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

/** `column` as ISO-8601 text, named `as`: for a SELECT list or RETURNING. */
export const isoTime = (column: string, as: string): string => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ${as}`;

import { stringify } from "csv-stringify/sync";
import { z } from "zod";
import type { Queryable } from "../store/Database";
import { isoTimeSql } from "../store/isoTime";
import { propertyRecordRow } from "../store/propertyRecordRow";
import { complianceStates, effectiveDeviceStateSql, effectiveRecordSinceSql, effectiveRecordStateSql } from "./complianceStates";
import type { ReportFilters } from "./reportQuery";
import { recordFilterSql, SqlParams } from "./reportSql";

export const csvColumns = [
  "deviceId",
  "moduleId",
  "deviceState",
  "path",
  "state",
  "desired",
  "reported",
  "desiredVersion",
  "desiredSince",
  "stateSince",
] as const;

export interface CsvExportOptions {
  now?: Date;
  /** Records fetched per query (default 5000). */
  chunkSize?: number;
}

// jsonb cells come out of PostgreSQL as text, times as ISO-8601 UTC: nothing to parse into objects
// and back, which is most of the cost of a 1M-row export. The other columns as the table's schema reads them.
const row = propertyRecordRow
  .pick({ device_id: true, module_id: true, path: true, state: true, desired_version: true, desired_since: true, state_since: true })
  .extend({ device_state: z.enum(complianceStates), desired: z.string().nullable(), reported: z.string().nullable() });

/**
 * The filtered property records as CSV (header row first), one chunk of rows per query: keyset
 * chunks on the records' primary key, so memory stays at one chunk whatever the fleet size and no
 * connection or transaction is held between chunks (PGlite serves other work in between). Rows are
 * read as they are when their chunk is read (no snapshot over the whole export); every record
 * appears at most once, in (deviceId, moduleId, path) order. Id and path cells starting with = + - @
 * get a leading ' so a spreadsheet does not run them as formulas (desired/reported are JSON text: a
 * string is quoted, a number stays a number).
 */
export async function* streamDevicesCsv(db: Queryable, filters: ReportFilters, options: CsvExportOptions = {}): AsyncGenerator<string> {
  const now = (options.now ?? new Date()).toISOString();
  const chunkSize = options.chunkSize ?? 5000;
  // The header goes out with the first rows, so reading the first chunk runs the first query.
  let header: string | undefined = stringify([[...csvColumns]]);
  let after: [string, string, string] | undefined;
  for (;;) {
    const params = new SqlParams();
    const nowSql = params.add(now, "::timestamptz");
    const where = recordFilterSql("r", "d", filters, params, nowSql);
    if (after) {
      const [device, module, path] = [params.add(after[0]), params.add(after[1]), params.add(after[2])];
      where.push(`(r.device_id, r.module_id, r.path) > (${device}, ${module}, ${path})`);
      // Implied by the join; lets a merge join start the devices scan here instead of at the first device.
      where.push(`(d.device_id, d.module_id) >= (${device}, ${module})`);
    }
    const { rows } = await db.query(
      `SELECT r.device_id, r.module_id, ${effectiveDeviceStateSql("d", nowSql)} AS device_state, r.path,
              ${effectiveRecordStateSql("r", nowSql)} AS state, r.desired::text AS desired, r.reported::text AS reported,
              r.desired_version, ${isoTimeSql("r.desired_since")} AS desired_since,
              ${isoTimeSql(effectiveRecordSinceSql("r", nowSql))} AS state_since
         FROM property_records r
         JOIN devices d ON d.device_id = r.device_id AND d.module_id = r.module_id
        WHERE ${where.length > 0 ? where.join(" AND ") : "true"}
        ORDER BY r.device_id, r.module_id, r.path
        LIMIT ${params.add(chunkSize)}`,
      params.values,
    );
    const records = z.array(row).parse(rows);
    if (records.length === 0) {
      if (header !== undefined) yield header;
      return;
    }
    yield (header ?? "") + stringify(
      records.map((r) => [
        inertText(r.device_id),
        inertText(r.module_id),
        r.device_state,
        inertText(r.path),
        r.state,
        r.desired ?? "",
        r.reported ?? "",
        r.desired_version,
        r.desired_since,
        r.state_since,
      ]),
    );
    header = undefined;
    const last = records.at(-1);
    if (!last || records.length < chunkSize) return;
    after = [last.device_id, last.module_id, last.path];
  }
}

/** Text a spreadsheet would run as a formula (OWASP CSV injection) gets a leading apostrophe. */
function inertText(text: string): string {
  return /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
}

/** A byte stream of `chunks` that reads the next chunk only when the consumer asks (back-pressure) and stops the query loop when cancelled. */
export function toByteStream(chunks: AsyncGenerator<string>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await chunks.next();
        if (next.done) controller.close();
        else controller.enqueue(encoder.encode(next.value));
      } catch (error) {
        controller.error(error);
      }
    },
    async cancel() {
      await chunks.return(undefined);
    },
  });
}

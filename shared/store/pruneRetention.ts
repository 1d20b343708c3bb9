import { z } from "zod";
import type { Queryable } from "./Database";
import { compactReportCounters } from "./reportCounters";

export interface RetentionSettings {
  /** property_history rows older than this go (HISTORY_RETENTION). */
  historyMs: number;
  /** dead_letters older than this go (DEAD_LETTER_RETENTION). */
  deadLetterMs: number;
  /** report_compliance_times rows older than this go: the summary's longest time-to-compliance window. */
  complianceTimesMs: number;
  /** Rows per DELETE statement (default 10,000): each statement is short, so writers never wait long. */
  chunkRows?: number;
  /** Stop starting new chunks after this long (default 60 s); the next run goes on where this one stopped. */
  budgetMs?: number;
}

export interface RetentionResult {
  history: number;
  deadLetters: number;
  complianceTimes: number;
  /** Delta rows folded into one per key (compactReportCounters). */
  countersFolded: number;
  /** False when the time budget ran out with old rows left. */
  done: boolean;
}

/**
 * One chunk per table: the oldest `$2` rows older than `$1`, found through the table's time index
 * (property_history_at_idx, dead_letters_received_at_idx, report_compliance_times_at_idx).
 * report_compliance_times has no key, so its rows are addressed by ctid within the statement.
 */
const chunks = {
  history: `WITH gone AS (
              DELETE FROM property_history WHERE id IN (
                SELECT id FROM property_history WHERE at < $1::timestamptz ORDER BY at LIMIT $2)
              RETURNING 1)
            SELECT count(*) AS n FROM gone`,
  deadLetters: `WITH gone AS (
                  DELETE FROM dead_letters WHERE id IN (
                    SELECT id FROM dead_letters WHERE received_at < $1::timestamptz ORDER BY received_at LIMIT $2)
                  RETURNING 1)
                SELECT count(*) AS n FROM gone`,
  complianceTimes: `WITH gone AS (
                      DELETE FROM report_compliance_times WHERE ctid = ANY (ARRAY(
                        SELECT ctid FROM report_compliance_times WHERE at < $1::timestamptz ORDER BY at LIMIT $2))
                      RETURNING 1)
                    SELECT count(*) AS n FROM gone`,
} as const;

const countRow = z.object({ n: z.coerce.number() });

/**
 * Prunes what the store keeps only for a while — history, dead letters, time-to-compliance rows —
 * in bounded chunks (one short autocommit statement each), and folds the report counters. Never
 * touches property_records or devices, so the counters stay equal to the tables.
 */
export async function pruneRetention(db: Queryable, settings: RetentionSettings, now: Date = new Date(), clock: () => number = Date.now): Promise<RetentionResult> {
  const chunkRows = settings.chunkRows ?? 10_000;
  const deadline = clock() + (settings.budgetMs ?? 60_000);
  const before = (ms: number) => new Date(now.getTime() - ms).toISOString();
  const result: RetentionResult = { history: 0, deadLetters: 0, complianceTimes: 0, countersFolded: 0, done: true };
  const targets: Array<[keyof typeof chunks, string]> = [
    ["history", before(settings.historyMs)],
    ["deadLetters", before(settings.deadLetterMs)],
    ["complianceTimes", before(settings.complianceTimesMs)],
  ];
  for (const [table, cutoff] of targets) {
    for (;;) {
      if (clock() >= deadline) {
        result.done = false;
        break;
      }
      const { rows } = await db.query(chunks[table], [cutoff, chunkRows]);
      const n = countRow.parse(rows[0]).n;
      result[table] += n;
      if (n < chunkRows) break;
    }
  }
  result.countersFolded = await compactReportCounters(db);
  return result;
}

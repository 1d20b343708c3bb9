import { z } from "zod";
import type { Json } from "../twin/json";
import { twinKeyString, type TwinKey } from "../twin/Twin";
import type { Database, Queryable } from "./Database";
import { lockTwins } from "./lockTwins";
import { isoTime, isoTimeAs } from "./isoTime";
import { recordStateAtSql, repushDueSql, type RepushSchedule } from "../compliance/staleAndDue";

export type { RepushSchedule };

/**
 * The re-push timer's SQL: claiming due devices under a lease, the per-record schedule
 * (attempts, next_attempt_at), removing a deleted device, and the counters. Schema: 002_repush.sql.
 * Which records are due is the compliance room's rule (shared/compliance/staleAndDue.ts).
 */
const DUE = repushDueSql("p", "$1::timestamptz");

export interface ClaimOptions {
  /** The run's clock (ISO-8601): decides what is due and when the lease ends. */
  now: string;
  /** Devices to claim at most (REPUSH_MAX_DEVICES_PER_RUN). */
  limit: number;
  /** Who holds the lease: unique per timer run. */
  owner: string;
  /** Lease length (REPUSH_LEASE). */
  leaseMs: number;
}

const keyRow = z.object({ device_id: z.string(), module_id: z.string() });
const toKey = (row: z.infer<typeof keyRow>): TwinKey => ({ deviceId: row.device_id, moduleId: row.module_id === "" ? null : row.module_id });
const keysParam = (keys: readonly TwinKey[]) => JSON.stringify(keys.map((k) => ({ device_id: k.deviceId, module_id: k.moduleId ?? "" })));

/**
 * Claims up to `limit` devices that have due records and no live lease, oldest due first, and leases
 * them to `owner` — one statement: rows another run is claiming right now are skipped
 * (FOR UPDATE SKIP LOCKED), rows it has claimed carry its lease. So two runs never get one device.
 */
export async function claimDueDevices(db: Queryable, options: ClaimOptions): Promise<TwinKey[]> {
  const leaseUntil = new Date(Date.parse(options.now) + options.leaseMs).toISOString();
  const result = await db.query(
    `WITH due AS (
       SELECT p.device_id, p.module_id, min(coalesce(p.next_attempt_at, p.stale_at)) AS due_at
         FROM property_records p
        WHERE ${DUE}
        GROUP BY p.device_id, p.module_id
     ), claimed AS (
       SELECT d.device_id, d.module_id, due.due_at
         FROM devices d
         JOIN due ON due.device_id = d.device_id AND due.module_id = d.module_id
        WHERE d.repush_lease_until IS NULL OR d.repush_lease_until <= $1::timestamptz
        ORDER BY due.due_at, d.device_id, d.module_id
        LIMIT $2
          FOR UPDATE OF d SKIP LOCKED
     )
     UPDATE devices d SET repush_lease_owner = $3, repush_lease_until = $4::timestamptz
       FROM claimed c
      WHERE d.device_id = c.device_id AND d.module_id = c.module_id
     RETURNING d.device_id, d.module_id, ${isoTimeAs("c.due_at", "due_at")}`,
    [options.now, options.limit, options.owner, leaseUntil],
  );
  const rows = result.rows.map((raw) => keyRow.extend({ due_at: isoTime }).parse(raw));
  rows.sort((a, b) => (a.due_at < b.due_at ? -1 : a.due_at > b.due_at ? 1 : 0) || (a.device_id < b.device_id ? -1 : a.device_id > b.device_id ? 1 : 0));
  return rows.map(toKey);
}

/** Ends `owner`'s lease on `keys` (a lease taken over by someone else is left alone). */
export async function releaseRepushLeases(db: Queryable, keys: readonly TwinKey[], owner: string): Promise<void> {
  if (keys.length === 0) return;
  await db.query(
    `UPDATE devices d SET repush_lease_owner = NULL, repush_lease_until = NULL
       FROM jsonb_to_recordset($1::jsonb) AS k(device_id text, module_id text)
      WHERE d.device_id = k.device_id AND d.module_id = k.module_id AND d.repush_lease_owner = $2`,
    [keysParam(keys), owner],
  );
}

/**
 * Inside a re-push commit transaction: locks (FOR UPDATE, in key order) the device rows of `keys`
 * still leased to `owner` at `now`, and returns their keys. Only those may be written: a lease that
 * expired may already be another run's, and a locked row cannot be claimed until COMMIT.
 */
export async function holdRepushLeases(tx: Queryable, keys: readonly TwinKey[], owner: string, now: string): Promise<TwinKey[]> {
  if (keys.length === 0) return [];
  const result = await tx.query(
    `SELECT d.device_id, d.module_id
       FROM devices d
       JOIN jsonb_to_recordset($1::jsonb) AS k(device_id text, module_id text)
         ON d.device_id = k.device_id AND d.module_id = k.module_id
      WHERE d.repush_lease_owner = $2 AND d.repush_lease_until > $3::timestamptz
      ORDER BY d.device_id, d.module_id
        FOR UPDATE OF d`,
    [keysParam(keys), owner, now],
  );
  return result.rows.map((raw) => toKey(keyRow.parse(raw)));
}

const scheduleRow = z.object({
  device_id: z.string(),
  module_id: z.string(),
  path: z.string(),
  attempts: z.coerce.number().int(),
  next_attempt_at: isoTime.nullable(),
});

/** Attempts and next attempt of every record of `keys`: by twin (`twinKeyString`), then by path. One query. */
export async function loadRepushSchedules(db: Queryable, keys: readonly TwinKey[]): Promise<Map<string, Map<string, RepushSchedule>>> {
  const schedules = new Map<string, Map<string, RepushSchedule>>();
  if (keys.length === 0) return schedules;
  const result = await db.query(
    `SELECT p.device_id, p.module_id, p.path, p.attempts, ${isoTimeAs("p.next_attempt_at", "next_attempt_at")}
       FROM jsonb_to_recordset($1::jsonb) AS k(device_id text, module_id text)
       JOIN property_records p ON p.device_id = k.device_id AND p.module_id = k.module_id`,
    [keysParam(keys)],
  );
  for (const raw of result.rows) {
    const row = scheduleRow.parse(raw);
    const id = twinKeyString(toKey(row));
    let twin = schedules.get(id);
    if (!twin) schedules.set(id, (twin = new Map()));
    twin.set(row.path, { attempts: row.attempts, nextAttemptAt: row.next_attempt_at });
  }
  return schedules;
}

/** Sets attempts and next attempt of the given records (after the compliance records were written). One statement. */
export async function saveRepushSchedules(tx: Queryable, schedules: ReadonlyArray<{ key: TwinKey; path: string; schedule: RepushSchedule }>): Promise<void> {
  if (schedules.length === 0) return;
  await tx.query(
    `UPDATE property_records p SET attempts = r.attempts, next_attempt_at = r.next_attempt_at
       FROM jsonb_to_recordset($1::jsonb) AS r(device_id text, module_id text, path text, attempts integer, next_attempt_at timestamptz)
      WHERE p.device_id = r.device_id AND p.module_id = r.module_id AND p.path = r.path`,
    [
      JSON.stringify(
        schedules.map(({ key, path, schedule }) => ({
          device_id: key.deviceId,
          module_id: key.moduleId ?? "",
          path,
          attempts: schedule.attempts,
          next_attempt_at: schedule.nextAttemptAt,
        })),
      ),
    ],
  );
}

/**
 * The hub says the twin is gone: its current records, stored twin and device row are deleted (a
 * device's module twins with it), and each record leaves one history row (to `removed`, cause
 * `deleted`) so its history stays. Returns how many properties were removed.
 */
export async function removeDeletedTwin(tx: Queryable, key: TwinKey, at: string, detail: Json, reach: "withModules" | "twinOnly" = "withModules"): Promise<number> {
  // A device's 404 or delete takes its modules with it; a module's only that module. A device's
  // create replaces the device twin only: its modules' events of the same batch are their own.
  const deviceOnly = key.moduleId === null && reach === "withModules";
  const scope = deviceOnly ? "device_id = $1" : "device_id = $1 AND module_id = $2";
  const params = deviceOnly ? [key.deviceId] : [key.deviceId, key.moduleId ?? ""];
  const n = params.length;
  const history = await tx.query(
    `INSERT INTO property_history (device_id, module_id, path, from_state, to_state, cause, at, desired_version, desired, reported, detail)
     SELECT device_id, module_id, path,
            ${recordStateAtSql("property_records", `$${n + 1}::timestamptz`)},
            'removed', 'deleted', $${n + 1}::timestamptz, desired_version, desired, reported, $${n + 2}::jsonb
       FROM property_records WHERE ${scope}
      ORDER BY module_id, path
     RETURNING id`,
    [...params, at, JSON.stringify(detail)],
  );
  await tx.query(`DELETE FROM property_records WHERE ${scope}`, params);
  await tx.query(`DELETE FROM twins WHERE ${scope}`, params);
  await tx.query(`DELETE FROM devices WHERE ${scope}`, params);
  return history.rows.length;
}

/**
 * Asks the timer to re-push a twin's non-compliant records at its next run (the API's
 * `POST …/repush`): next_attempt_at = now for its pending, stale, drifted and escalated records;
 * an escalated record starts a fresh series of attempts. `failed` records are left alone (the device
 * rejected the value: change desired instead). Returns the paths queued.
 */
export async function queueRepushNow(db: Pick<Database, "transaction">, key: TwinKey, now: string): Promise<string[]> {
  // A writer of the twin's schedules like any other: one writer per twin (lockTwins).
  const result = await db.transaction(async (tx) => {
    await lockTwins(tx, [key]);
    return tx.query(
      `UPDATE property_records
          SET next_attempt_at = $3::timestamptz,
              attempts = CASE WHEN state = 'escalated' THEN 0 ELSE attempts END
        WHERE device_id = $1 AND module_id = $2 AND state IN ('pending', 'stale', 'drifted', 'escalated')
       RETURNING path`,
      [key.deviceId, key.moduleId ?? "", now],
    );
  });
  return result.rows.map((row) => z.object({ path: z.string() }).parse(row).path).sort();
}

/** Totals over the whole history, for `npm start`'s summary line. */
export interface RepushCounters {
  /** Re-pushes counted as attempts (accepted by the hub or failed; 412, 429 and a push superseded by a newer desired value are not). */
  attempts: number;
  /** Properties that became compliant after a re-push of their value. */
  succeeded: number;
  /** Properties escalated after the maximum attempts. */
  escalated: number;
}

const countersRow = z.object({ attempts: z.coerce.number(), succeeded: z.coerce.number(), escalated: z.coerce.number() });

/** Re-push totals from the history table (so they count every instance's work). */
export async function repushCounters(db: Pick<Database, "query">): Promise<RepushCounters> {
  const result = await db.query(
    `SELECT
       (SELECT count(*) FROM property_history
         WHERE cause = 'repush' AND detail->>'outcome' IN ('pushed', 'error') AND detail->>'attempt' IS NOT NULL) AS attempts,
       (SELECT count(*) FROM property_history c
         WHERE c.to_state = 'compliant'
           AND EXISTS (
             SELECT 1 FROM property_history p
              WHERE p.device_id = c.device_id AND p.module_id = c.module_id AND p.path = c.path
                AND p.cause = 'repush' AND p.detail->>'outcome' = 'pushed' AND p.id < c.id
                AND NOT EXISTS (
                  SELECT 1 FROM property_history q
                   WHERE q.device_id = c.device_id AND q.module_id = c.module_id AND q.path = c.path
                     AND q.id > p.id AND q.id < c.id AND q.to_state = 'compliant'))) AS succeeded,
       (SELECT count(*) FROM property_history
         WHERE cause = 'repush' AND to_state = 'escalated' AND from_state IS DISTINCT FROM 'escalated') AS escalated`,
  );
  return countersRow.parse(result.rows[0]);
}

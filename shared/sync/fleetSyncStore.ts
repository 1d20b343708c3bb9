import { z } from "zod";
import type { Database, Queryable } from "../store/Database";
import { isoTime, isoTimeAs } from "../store/isoTime";
import type { TwinKey } from "../twin/Twin";

/**
 * The fleet sync's and the resync queue's SQL (schema: 005_fleet_sync.sql). Twins themselves are
 * only ever written through applyHubTwins and removeDeletedTwin; this file keeps the bookkeeping
 * around them: the pass, which twins a pass saw, and the queue's per-twin schedule.
 */

export type SyncPhase = "devices" | "modules" | "confirm" | "done";

export interface SyncCounts {
  twinsRead: number;
  twinsChanged: number;
  twinsRemoved: number;
  twinsConfirmed: number;
  queriesUsed: number;
  errors: number;
}

export interface SyncPass extends SyncCounts {
  id: number;
  startedAt: string;
  finishedAt: string | null;
  phase: SyncPhase;
  continuation: string | null;
  runs: number;
}

const time = isoTime;
const passRow = z.object({
  id: z.coerce.number(),
  started_at: time,
  finished_at: time.nullable(),
  phase: z.enum(["devices", "modules", "confirm", "done"]),
  continuation: z.string().nullable(),
  twins_read: z.coerce.number(),
  twins_changed: z.coerce.number(),
  twins_removed: z.coerce.number(),
  twins_confirmed: z.coerce.number(),
  queries_used: z.coerce.number(),
  errors: z.coerce.number(),
  runs: z.coerce.number(),
  lease_owner: z.string().nullable(),
  lease_until: time.nullable(),
});
const PASS_COLUMNS = `id, ${isoTimeAs("started_at", "started_at")}, ${isoTimeAs("finished_at", "finished_at")}, phase, continuation,
  twins_read, twins_changed, twins_removed, twins_confirmed, queries_used, errors, runs, lease_owner, ${isoTimeAs("lease_until", "lease_until")}`;

function toPass(raw: unknown): SyncPass {
  const r = passRow.parse(raw);
  return {
    id: r.id,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    phase: r.phase,
    continuation: r.continuation,
    runs: r.runs,
    twinsRead: r.twins_read,
    twinsChanged: r.twins_changed,
    twinsRemoved: r.twins_removed,
    twinsConfirmed: r.twins_confirmed,
    queriesUsed: r.queries_used,
    errors: r.errors,
  };
}

export type ClaimPassResult = { pass: SyncPass; started: boolean } | { pass: null; reason: "busy" | "idle" };

/**
 * Takes the pass in progress under a lease for `owner` until `leaseUntil`, or starts one when
 * `startNew` is set or no pass has ever completed (a first deployment onto an existing hub).
 * A pass leased to a live run elsewhere is left alone ("busy"). One transaction; the pass row is
 * locked while deciding, and the unique index on open passes stops two starts.
 */
export async function claimPass(db: Database, options: { owner: string; now: string; leaseUntil: string; startNew: boolean }): Promise<ClaimPassResult> {
  return db.transaction(async (tx) => {
    const open = await tx.query(`SELECT ${PASS_COLUMNS} FROM fleet_sync_passes WHERE finished_at IS NULL FOR UPDATE`);
    if (open.rows[0]) {
      const row = passRow.parse(open.rows[0]);
      if (row.lease_owner !== null && row.lease_owner !== options.owner && row.lease_until !== null && row.lease_until > options.now) {
        return { pass: null, reason: "busy" as const };
      }
      const leased = await tx.query(
        `UPDATE fleet_sync_passes SET lease_owner = $2, lease_until = $3::timestamptz, runs = runs + 1 WHERE id = $1 RETURNING ${PASS_COLUMNS}`,
        [row.id, options.owner, options.leaseUntil],
      );
      return { pass: toPass(leased.rows[0]), started: false };
    }
    if (!options.startNew) {
      const done = await tx.query("SELECT 1 FROM fleet_sync_passes WHERE finished_at IS NOT NULL LIMIT 1");
      if (done.rows.length > 0) return { pass: null, reason: "idle" as const };
    }
    // Another run may have started one since our SELECT: the unique index on open passes decides.
    const created = await tx.query(
      `INSERT INTO fleet_sync_passes (started_at, phase, runs, lease_owner, lease_until, updated_at)
       VALUES ($1::timestamptz, 'devices', 1, $2, $3::timestamptz, $1::timestamptz)
       ON CONFLICT ((true)) WHERE finished_at IS NULL DO NOTHING
       RETURNING ${PASS_COLUMNS}`,
      [options.now, options.owner, options.leaseUntil],
    );
    if (!created.rows[0]) return { pass: null, reason: "busy" as const };
    return { pass: toPass(created.rows[0]), started: true };
  });
}

/** Saves the pass's place and counts (only while `owner` holds it); false when the lease was lost. */
export async function savePass(db: Queryable, pass: SyncPass, owner: string, now: string, leaseUntil: string): Promise<boolean> {
  const result = await db.query(
    `UPDATE fleet_sync_passes
        SET phase = $3, continuation = $4, finished_at = $5::timestamptz, twins_read = $6, twins_changed = $7, twins_removed = $8,
            twins_confirmed = $9, queries_used = $10, errors = $11, updated_at = $12::timestamptz,
            lease_until = CASE WHEN $5::timestamptz IS NULL THEN $13::timestamptz END,
            lease_owner = CASE WHEN $5::timestamptz IS NULL THEN lease_owner END
      WHERE id = $1 AND lease_owner = $2
     RETURNING id`,
    [
      pass.id,
      owner,
      pass.phase,
      pass.continuation,
      pass.finishedAt,
      pass.twinsRead,
      pass.twinsChanged,
      pass.twinsRemoved,
      pass.twinsConfirmed,
      pass.queriesUsed,
      pass.errors,
      now,
      leaseUntil,
    ],
  );
  return result.rows.length > 0;
}

/** Ends `owner`'s lease on the pass (the next run, anywhere, may continue it at once). */
export async function releasePass(db: Queryable, passId: number, owner: string): Promise<void> {
  await db.query("UPDATE fleet_sync_passes SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2", [passId, owner]);
}


/**
 * Records that pass `passId` read these twins from the hub — each only where the stored copy is not
 * newer than the read: a query answering a lower version than stored is either behind (queries lag
 * up to 30 minutes) or the device was deleted and created again, and only a getTwin can tell, so
 * such a twin stays unseen and is confirmed at the end of the pass. Only the bookkeeping column
 * changes, and the rows are locked in one fixed (key) order, like lockTwins, so this never
 * deadlocks with a batch writing the same twins.
 */
export async function markSeen(db: Queryable, passId: number, twins: ReadonlyArray<TwinKey & { version: number }>): Promise<void> {
  if (twins.length === 0) return;
  await db.query(
    `UPDATE twins t SET last_seen_pass = $2
       FROM (SELECT t2.device_id, t2.module_id FROM twins t2
               JOIN jsonb_to_recordset($1::jsonb) AS k(device_id text, module_id text, version bigint)
                 ON t2.device_id = k.device_id AND t2.module_id = k.module_id AND t2.version <= k.version
              ORDER BY t2.device_id, t2.module_id FOR UPDATE OF t2) AS s
      WHERE t.device_id = s.device_id AND t.module_id = s.module_id`,
    [JSON.stringify(twins.map((k) => ({ device_id: k.deviceId, module_id: k.moduleId ?? "", version: k.version }))), passId],
  );
}

/**
 * Stored twins pass `pass` did not see, first stored before it started (a twin the event path
 * stored during the pass is not its business), in key order after `after` (a `keyCursor`).
 */
export async function unseenTwins(db: Queryable, pass: Pick<SyncPass, "id" | "startedAt">, after: string | null, limit: number): Promise<TwinKey[]> {
  const [deviceId, moduleId] = after === null ? ["", ""] : splitCursor(after);
  const result = await db.query(
    `SELECT device_id, module_id FROM twins
      WHERE last_seen_pass IS DISTINCT FROM $1 AND stored_at < $2::timestamptz
        AND ($3::boolean OR (device_id, module_id) > ($4, $5))
      ORDER BY device_id, module_id
      LIMIT $6`,
    [pass.id, pass.startedAt, after === null, deviceId, moduleId, limit],
  );
  return result.rows.map((raw) => {
    const row = z.object({ device_id: z.string(), module_id: z.string() }).parse(raw);
    return { deviceId: row.device_id, moduleId: row.module_id === "" ? null : row.module_id };
  });
}

/** The confirmation phase's place: the last twin key handled, as JSON text (ids may hold any character but NUL). */
export const keyCursor = (key: TwinKey): string => JSON.stringify([key.deviceId, key.moduleId ?? ""]);

function splitCursor(cursor: string): [string, string] {
  const parsed = z.tuple([z.string(), z.string()]).safeParse(JSON.parse(cursor));
  if (!parsed.success) throw new Error("fleet sync: the stored confirmation cursor is not a twin key");
  return parsed.data;
}

/** The last complete pass and the one in progress, for the summary. */
export async function readSyncPasses(db: Queryable): Promise<{ lastComplete: SyncPass | null; inProgress: SyncPass | null }> {
  const result = await db.query(
    `(SELECT ${PASS_COLUMNS} FROM fleet_sync_passes WHERE finished_at IS NOT NULL ORDER BY finished_at DESC, id DESC LIMIT 1)
     UNION ALL
     (SELECT ${PASS_COLUMNS} FROM fleet_sync_passes WHERE finished_at IS NULL LIMIT 1)`,
  );
  const passes = result.rows.map(toPass);
  return { lastComplete: passes.find((p) => p.finishedAt !== null) ?? null, inProgress: passes.find((p) => p.finishedAt === null) ?? null };
}

export interface DueResync {
  key: TwinKey;
  attempts: number;
}

/**
 * Claims up to `limit` flagged twins whose next try has come, oldest flag first, by pushing their
 * next try to `leaseUntil` (so a concurrent queue run skips them; SKIP LOCKED so it never waits).
 */
export async function claimDueResyncs(db: Queryable, now: string, leaseUntil: string, limit: number): Promise<DueResync[]> {
  const result = await db.query(
    `UPDATE twins t SET resync_next_at = $2::timestamptz
       FROM (SELECT device_id, module_id FROM twins
              WHERE resync_needed AND (resync_next_at IS NULL OR resync_next_at <= $1::timestamptz)
              ORDER BY resync_next_at NULLS FIRST, resync_since, device_id, module_id
              LIMIT $3
                FOR UPDATE SKIP LOCKED) AS due
      WHERE t.device_id = due.device_id AND t.module_id = due.module_id
     RETURNING t.device_id, t.module_id, t.resync_attempts`,
    [now, leaseUntil, limit],
  );
  return result.rows
    .map((raw) => z.object({ device_id: z.string(), module_id: z.string(), resync_attempts: z.coerce.number() }).parse(raw))
    .sort((a, b) => (a.device_id < b.device_id ? -1 : a.device_id > b.device_id ? 1 : a.module_id < b.module_id ? -1 : a.module_id > b.module_id ? 1 : 0))
    .map((r) => ({ key: { deviceId: r.device_id, moduleId: r.module_id === "" ? null : r.module_id }, attempts: r.resync_attempts }));
}

/** A failed resync: one more attempt, the next try at `nextAt` (only while the twin is still flagged). */
export async function scheduleResyncRetry(db: Queryable, key: TwinKey, attempts: number, nextAt: string): Promise<void> {
  await db.query(
    `UPDATE twins SET resync_attempts = $3, resync_next_at = $4::timestamptz
      WHERE device_id = $1 AND module_id = $2 AND resync_needed`,
    [key.deviceId, key.moduleId ?? "", attempts, nextAt],
  );
}

/** Flags a twin for the resync queue (a getTwin that failed during a pass's confirmation). */
export async function flagResync(db: Queryable, key: TwinKey, at: string): Promise<void> {
  const params = [key.deviceId, key.moduleId ?? "", at];
  await db.query(`UPDATE twins SET resync_needed = true, updated_at = $3::timestamptz WHERE device_id = $1 AND module_id = $2 AND NOT resync_needed`, params);
  await db.query(`UPDATE devices SET resync_needed = true, updated_at = $3::timestamptz WHERE device_id = $1 AND module_id = $2 AND NOT resync_needed`, params);
}

export interface ResyncQueueStats {
  /** Twins flagged resyncNeeded. */
  count: number;
  /** When the oldest flag was raised (null when none). */
  oldestSince: string | null;
}

export async function resyncQueueStats(db: Queryable): Promise<ResyncQueueStats> {
  const result = await db.query(`SELECT count(*) AS count, ${isoTimeAs("min(resync_since)", "oldest")} FROM twins WHERE resync_needed`);
  const row = z.object({ count: z.coerce.number(), oldest: isoTime.nullable() }).parse(result.rows[0]);
  return { count: row.count, oldestSince: row.oldest };
}

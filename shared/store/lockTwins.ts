import type { TwinKey } from "../twin/Twin";
import type { Queryable } from "./Database";

/**
 * One writer per twin (ARCHITECTURE: convergence). Every use case that writes a twin's stored copy,
 * records or device row — reconcile, re-push, resync, fleet sync, lifecycle — takes this lock first,
 * inside its transaction, then reads the twin's stored state *in that transaction* and decides from it.
 * A writer may do its hub I/O before the transaction; it must never decide from a read taken before
 * the lock.
 *
 * Transaction-scoped advisory locks (released at COMMIT or ROLLBACK, no session state, so they work
 * through PgBouncer in transaction mode), one per twin key, taken in one fixed order (ascending lock
 * id) in one statement, so two writers locking overlapping sets cannot deadlock. They lock absent
 * twins too (a row lock could not: a twin about to be inserted has no row). Two keys whose 64-bit
 * hashes collide merely share a lock. On PGlite (one backend) transactions are serial anyway.
 */
export async function lockTwins(tx: Queryable, keys: readonly TwinKey[]): Promise<void> {
  if (keys.length === 0) return;
  await tx.query(
    `SELECT count(pg_advisory_xact_lock(l.id))
       FROM (SELECT DISTINCT hashtextextended(k.device_id || '/' || k.module_id, 0) AS id
               FROM jsonb_to_recordset($1::jsonb) AS k(device_id text, module_id text)
              ORDER BY 1) AS l`,
    [JSON.stringify(keys.map((k) => ({ device_id: k.deviceId, module_id: k.moduleId ?? "" })))],
  );
}

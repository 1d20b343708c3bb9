import { z } from "zod";
import { COMPLIANCE_STATES, type ComplianceState } from "../compliance/ComplianceState";
import type { PropertyRecord, Transition } from "../compliance/PropertyRecord";
import { summarizeDevice, type DeviceSummary } from "../compliance/summarizeDevice";
import { createHash } from "node:crypto";
import { storableJson, type DeadLetter } from "../events/decodeTwinChanges";
import { jsonEqual, type Json, type JsonObject } from "../twin/json";
import { twinKeyString, type Twin, type TwinKey } from "../twin/Twin";
import type { Queryable } from "./Database";
import { isoTime, isoTimeAs } from "./isoTime";
import { propertyRecordRow } from "./propertyRecordRow";

/** What the store holds about one twin: its stored copy, current records and device row. */
export interface StoredTwinState {
  twin: Twin;
  resyncNeeded: boolean;
  records: Map<string, PropertyRecord>;
  device: { state: ComplianceState; stateSince: string } | undefined;
  /** The device row as stored, to skip rewriting it unchanged. */
  storedDevice: Omit<DeviceRow, "key"> | undefined;
}

export interface DeviceRow extends DeviceSummary {
  key: TwinKey;
  tags: JsonObject;
  resyncNeeded: boolean;
}

/** Everything one batch writes, in one transaction. */
export interface BatchWrite {
  at: string;
  twins: Array<{ twin: Twin; resyncNeeded: boolean }>;
  records: Array<{ key: TwinKey; record: PropertyRecord }>;
  removed: Array<{ key: TwinKey; path: string }>;
  history: Array<{ key: TwinKey; transition: Transition; detail?: Json }>;
  devices: DeviceRow[];
  deadLetters: DeadLetter[];
  /** The last lifecycle event applied per twin id (reconcile only). */
  lifecycle?: LifecycleMark[];
}

/**
 * Adds `key`'s device row — the worst of `records`, its counts, tags and resync flag — to `batch`,
 * unless the stored row (`stored`) already says exactly that: every writer rewrites a device row
 * only when it changed. `previous` keeps `stateSince` when the state stays.
 */
export function addDeviceRow(
  batch: Pick<BatchWrite, "devices">,
  key: TwinKey,
  records: Iterable<PropertyRecord>,
  previous: StoredTwinState["device"],
  at: string,
  row: { tags: JsonObject; resyncNeeded: boolean },
  stored: StoredTwinState["storedDevice"],
): void {
  const device = { ...summarizeDevice(records, previous, at), tags: row.tags, resyncNeeded: row.resyncNeeded };
  if (!jsonEqual(device, stored)) batch.devices.push({ key, ...device });
}

/** The last device lifecycle event applied to a twin id: kept after the twin's rows are deleted. */
export interface LifecycleMark {
  key: TwinKey;
  op: "createDeviceIdentity" | "deleteDeviceIdentity";
  /** The event's enqueued time (ISO-8601). */
  at: string;
  partitionId: string | undefined;
  sequenceNumber: number | undefined;
}

const json = z.custom<Json>(() => true);
const twinRow = z.object({
  device_id: z.string(),
  module_id: z.string(),
  version: z.coerce.number(),
  etag: z.string().nullable(),
  tags: json,
  desired: json,
  reported: json,
  resync_needed: z.boolean(),
  device_state: z.enum(COMPLIANCE_STATES).nullable(),
  device_state_since: isoTime.nullable(),
  device_stale_at: isoTime.nullable(),
  device_counts: z.record(z.enum(COMPLIANCE_STATES), z.number()).nullable(),
  device_tags: json.nullable(),
  device_resync_needed: z.boolean().nullable(),
});
const recordRow = propertyRecordRow.omit({ attempts: true, next_attempt_at: true });

const keysJson = (keys: readonly TwinKey[]): string => JSON.stringify(keys.map((k) => ({ device_id: k.deviceId, module_id: k.moduleId ?? "" })));

/** Loads the stored twins, records and device rows of `keys` (two queries whatever the count). */
export async function loadTwinStates(db: Queryable, keys: readonly TwinKey[]): Promise<Map<string, StoredTwinState>> {
  const states = new Map<string, StoredTwinState>();
  if (keys.length === 0) return states;
  const param = keysJson(keys);
  const twins = await db.query(
    `SELECT t.device_id, t.module_id, t.version, t.etag, t.tags, t.desired, t.reported, t.resync_needed,
            d.state AS device_state, ${isoTimeAs("d.state_since", "device_state_since")}, ${isoTimeAs("d.stale_at", "device_stale_at")},
            d.counts AS device_counts, d.tags AS device_tags, d.resync_needed AS device_resync_needed
       FROM jsonb_to_recordset($1::jsonb) AS k(device_id text, module_id text)
       JOIN twins t ON t.device_id = k.device_id AND t.module_id = k.module_id
       LEFT JOIN devices d ON d.device_id = t.device_id AND d.module_id = t.module_id`,
    [param],
  );
  for (const raw of twins.rows) {
    const row = twinRow.parse(raw);
    const moduleId = row.module_id === "" ? null : row.module_id;
    states.set(twinKeyString({ deviceId: row.device_id, moduleId }), {
      twin: {
        deviceId: row.device_id,
        moduleId,
        version: row.version,
        etag: row.etag ?? undefined,
        tags: row.tags as JsonObject,
        desired: row.desired as JsonObject,
        reported: row.reported as JsonObject,
      },
      resyncNeeded: row.resync_needed,
      records: new Map(),
      device: row.device_state && row.device_state_since ? { state: row.device_state, stateSince: row.device_state_since } : undefined,
      storedDevice:
        row.device_state && row.device_state_since && row.device_counts
          ? {
              state: row.device_state,
              stateSince: row.device_state_since,
              staleAt: row.device_stale_at ?? undefined,
              counts: row.device_counts,
              tags: (row.device_tags ?? {}) as JsonObject,
              resyncNeeded: row.device_resync_needed ?? false,
            }
          : undefined,
    });
  }
  const records = await db.query(
    `SELECT p.device_id, p.module_id, p.path, p.reported_path, p.compare, p.state, p.desired, p.reported,
            p.desired_version, ${isoTimeAs("p.desired_since", "desired_since")}, ${isoTimeAs("p.state_since", "state_since")},
            ${isoTimeAs("p.stale_at", "stale_at")}, p.repush_drift
       FROM jsonb_to_recordset($1::jsonb) AS k(device_id text, module_id text)
       JOIN property_records p ON p.device_id = k.device_id AND p.module_id = k.module_id`,
    [param],
  );
  for (const raw of records.rows) {
    const row = recordRow.parse(raw);
    const state = states.get(twinKeyString({ deviceId: row.device_id, moduleId: row.module_id === "" ? null : row.module_id }));
    state?.records.set(row.path, toRecord(row));
  }
  return states;
}

/** The stored module twins of `deviceIds` (a device's delete takes them with it, so its writer locks them too). */
export async function listModuleTwins(db: Queryable, deviceIds: readonly string[]): Promise<TwinKey[]> {
  if (deviceIds.length === 0) return [];
  const { rows } = await db.query(
    `SELECT t.device_id, t.module_id FROM twins t
      WHERE t.device_id IN (SELECT jsonb_array_elements_text($1::jsonb)) AND t.module_id <> ''`,
    [JSON.stringify(deviceIds)],
  );
  return rows.map((raw) => {
    const row = z.object({ device_id: z.string(), module_id: z.string() }).parse(raw);
    return { deviceId: row.device_id, moduleId: row.module_id };
  });
}

function toRecord(row: z.infer<typeof recordRow>): PropertyRecord {
  return {
    path: row.path,
    reportedPath: row.reported_path,
    compare: row.compare,
    state: row.state,
    desired: row.desired,
    reported: row.reported === null ? undefined : row.reported,
    desiredVersion: row.desired_version,
    desiredSince: row.desired_since,
    stateSince: row.state_since,
    staleAt: row.stale_at,
    repushDrift: row.repush_drift,
  };
}

/**
 * Writes one batch: set-based statements (one per table), so a batch costs the same few round
 * trips whatever its size. Call inside a transaction. A stored twin never goes back in version.
 */
export async function writeBatch(tx: Queryable, batch: BatchWrite): Promise<void> {
  const { at } = batch;
  if (batch.twins.length > 0) {
    await tx.query(
      `INSERT INTO twins (device_id, module_id, version, etag, tags, desired, reported, resync_needed, updated_at)
       SELECT r.device_id, r.module_id, r.version, r.etag, r.tags, r.desired, r.reported, r.resync_needed, $2::timestamptz
         FROM jsonb_to_recordset($1::jsonb) AS r(device_id text, module_id text, version bigint, etag text,
              tags jsonb, desired jsonb, reported jsonb, resync_needed boolean)
       ON CONFLICT (device_id, module_id) DO UPDATE SET
         version = EXCLUDED.version, etag = EXCLUDED.etag, tags = EXCLUDED.tags, desired = EXCLUDED.desired,
         reported = EXCLUDED.reported, resync_needed = EXCLUDED.resync_needed, updated_at = EXCLUDED.updated_at
       WHERE twins.version <= EXCLUDED.version`,
      [
        JSON.stringify(
          batch.twins.map(({ twin, resyncNeeded }) => ({
            device_id: twin.deviceId,
            module_id: twin.moduleId ?? "",
            version: twin.version,
            etag: twin.etag ?? null,
            tags: twin.tags,
            desired: twin.desired,
            reported: twin.reported,
            resync_needed: resyncNeeded,
          })),
        ),
        at,
      ],
    );
  }
  if (batch.removed.length > 0) {
    await tx.query(
      `DELETE FROM property_records p
         USING jsonb_to_recordset($1::jsonb) AS r(device_id text, module_id text, path text)
        WHERE p.device_id = r.device_id AND p.module_id = r.module_id AND p.path = r.path`,
      [JSON.stringify(batch.removed.map(({ key, path }) => ({ device_id: key.deviceId, module_id: key.moduleId ?? "", path })))],
    );
  }
  if (batch.records.length > 0) {
    await tx.query(
      `INSERT INTO property_records (device_id, module_id, path, reported_path, compare, state, desired, reported,
              desired_version, desired_since, state_since, stale_at, repush_drift, updated_at)
       SELECT r.device_id, r.module_id, r.path, r.reported_path, r.compare, r.state, r.desired, r.reported,
              r.desired_version, r.desired_since, r.state_since, r.stale_at, r.repush_drift, $2::timestamptz
         FROM jsonb_to_recordset($1::jsonb) AS r(device_id text, module_id text, path text, reported_path text,
              compare text, state text, desired jsonb, reported jsonb, desired_version bigint,
              desired_since timestamptz, state_since timestamptz, stale_at timestamptz, repush_drift boolean)
       ON CONFLICT (device_id, module_id, path_key) DO UPDATE SET
         reported_path = EXCLUDED.reported_path, compare = EXCLUDED.compare, state = EXCLUDED.state,
         desired = EXCLUDED.desired, reported = EXCLUDED.reported, desired_version = EXCLUDED.desired_version,
         desired_since = EXCLUDED.desired_since, state_since = EXCLUDED.state_since, stale_at = EXCLUDED.stale_at,
         repush_drift = EXCLUDED.repush_drift, updated_at = EXCLUDED.updated_at,
         -- a new desired value, or compliance, starts re-push from scratch
         attempts = CASE WHEN property_records.desired_version <> EXCLUDED.desired_version OR EXCLUDED.state = 'compliant'
                         THEN 0 ELSE property_records.attempts END,
         next_attempt_at = CASE WHEN property_records.desired_version <> EXCLUDED.desired_version OR EXCLUDED.state = 'compliant'
                         THEN NULL ELSE property_records.next_attempt_at END`,
      [
        JSON.stringify(
          batch.records.map(({ key, record }) => ({
            device_id: key.deviceId,
            module_id: key.moduleId ?? "",
            path: record.path,
            reported_path: record.reportedPath,
            compare: record.compare,
            state: record.state,
            desired: record.desired,
            ...(record.reported === undefined ? {} : { reported: record.reported }),
            desired_version: record.desiredVersion,
            desired_since: record.desiredSince,
            state_since: record.stateSince,
            stale_at: record.staleAt,
            repush_drift: record.repushDrift,
          })),
        ),
        at,
      ],
    );
  }
  if (batch.history.length > 0) {
    await tx.query(
      `INSERT INTO property_history (device_id, module_id, path, from_state, to_state, cause, at, desired_version, desired, reported, detail)
       SELECT e->>'device_id', e->>'module_id', e->>'path', e->>'from_state', e->>'to_state', e->>'cause',
              (e->>'at')::timestamptz, (e->>'desired_version')::bigint, e->'desired', e->'reported', e->'detail'
         FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS h(e, n)
        ORDER BY n`,
      [
        JSON.stringify(
          batch.history.map(({ key, transition: t, detail }) => ({
            device_id: key.deviceId,
            module_id: key.moduleId ?? "",
            path: t.path,
            from_state: t.from,
            to_state: t.to,
            cause: t.cause,
            at: t.at,
            desired_version: t.desiredVersion,
            ...(t.desired === undefined ? {} : { desired: t.desired }),
            ...(t.reported === undefined ? {} : { reported: t.reported }),
            ...(detail === undefined ? {} : { detail }),
          })),
        ),
      ],
    );
  }
  if (batch.devices.length > 0) {
    await tx.query(
      `INSERT INTO devices (device_id, module_id, state, state_since, stale_at, counts, tags, resync_needed, updated_at)
       SELECT r.device_id, r.module_id, r.state, r.state_since, r.stale_at, r.counts, r.tags, r.resync_needed, $2::timestamptz
         FROM jsonb_to_recordset($1::jsonb) AS r(device_id text, module_id text, state text, state_since timestamptz,
              stale_at timestamptz, counts jsonb, tags jsonb, resync_needed boolean)
       ON CONFLICT (device_id, module_id) DO UPDATE SET
         state = EXCLUDED.state, state_since = EXCLUDED.state_since, stale_at = EXCLUDED.stale_at, counts = EXCLUDED.counts,
         tags = EXCLUDED.tags, resync_needed = EXCLUDED.resync_needed, updated_at = EXCLUDED.updated_at`,
      [
        JSON.stringify(
          batch.devices.map((d) => ({
            device_id: d.key.deviceId,
            module_id: d.key.moduleId ?? "",
            state: d.state,
            state_since: d.stateSince,
            stale_at: d.staleAt ?? null,
            counts: d.counts,
            tags: d.tags,
            resync_needed: d.resyncNeeded,
          })),
        ),
        at,
      ],
    );
  }
  if (batch.lifecycle && batch.lifecycle.length > 0) await writeLifecycleMarks(tx, batch.lifecycle);
  await writeDeadLetters(tx, at, batch.deadLetters);
}

/** What a dead letter's reason keeps at most (the raw event beside it keeps the rest). */
const MAX_REASON = 2000;
/** Ids a dead letter keeps at most: it is evidence, and a 10 KB "device id" is the poison itself. */
const MAX_ID = 1024;

/**
 * Stores dead letters once each: a re-delivered batch (its COMMIT went through, its acknowledgement
 * did not) finds them by their dedupe key (004_integrity.sql) and adds nothing. Text is made
 * storable (NUL escaped, lone surrogates replaced) and capped, and the row says so.
 */
export async function writeDeadLetters(tx: Queryable, at: string, deadLetters: readonly DeadLetter[]): Promise<void> {
  if (deadLetters.length === 0) return;
  await tx.query(
    `INSERT INTO dead_letters (received_at, partition_id, sequence_number, device_id, reason, raw)
     SELECT $2::timestamptz, e->>'partition_id', (e->>'sequence_number')::bigint, e->>'device_id', e->>'reason', e->'raw'
       FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS d(e, n)
      ORDER BY n
     ON CONFLICT (dedupe_key) DO NOTHING`,
    [
      JSON.stringify(
        deadLetters.map((d) => ({
          partition_id: d.partitionId === undefined ? null : capText(d.partitionId, MAX_ID),
          sequence_number: d.sequenceNumber ?? null,
          device_id: d.deviceId === undefined ? null : capText(d.deviceId, MAX_ID),
          reason: capText(d.reason, MAX_REASON),
          raw: d.raw,
        })),
      ),
      at,
    ],
  );
}

/**
 * The last resort when dead letters themselves could not be stored (the caller rolled back to a
 * savepoint): one minimal row per dead letter, naming the failure and the original reason, with a
 * digest of the raw event so distinct events keep distinct rows and a re-delivery stores none again.
 */
export async function writeMinimalDeadLetters(tx: Queryable, at: string, deadLetters: readonly DeadLetter[], failure: string): Promise<void> {
  const minimal = deadLetters.map((d): DeadLetter => {
    const digest = createHash("sha256").update(JSON.stringify(storableJson(d.raw))).digest("hex");
    return {
      index: d.index,
      deviceId: undefined,
      partitionId: d.partitionId,
      sequenceNumber: d.sequenceNumber,
      reason: `the dead letter could not be stored whole (${failure}); its reason was: ${d.reason}`,
      raw: { unstorable: true, index: d.index, sha256: digest },
    };
  });
  await writeDeadLetters(tx, at, minimal);
}

function capText(text: string, max: number): string {
  const safe = storableJson(text) as string;
  return safe.length <= max ? safe : `${safe.slice(0, max)}… [truncated: ${safe.length} characters]`;
}

const lifecycleRow = z.object({
  device_id: z.string(),
  module_id: z.string(),
  op: z.enum(["createDeviceIdentity", "deleteDeviceIdentity"]),
  at: isoTime,
  partition_id: z.string().nullable(),
  sequence_number: z.coerce.number().nullable(),
});

/** The last lifecycle event applied to each of `keys` that has one, by `twinKeyString`. One query. */
export async function loadLifecycleMarks(db: Queryable, keys: readonly TwinKey[]): Promise<Map<string, LifecycleMark>> {
  const marks = new Map<string, LifecycleMark>();
  if (keys.length === 0) return marks;
  const { rows } = await db.query(
    `SELECT l.device_id, l.module_id, l.op, ${isoTimeAs("l.at", "at")}, l.partition_id, l.sequence_number
       FROM jsonb_to_recordset($1::jsonb) AS k(device_id text, module_id text)
       JOIN twin_lifecycle l ON l.device_id = k.device_id AND l.module_id = k.module_id`,
    [keysJson(keys)],
  );
  for (const raw of rows) {
    const row = lifecycleRow.parse(raw);
    const moduleId = row.module_id === "" ? null : row.module_id;
    marks.set(twinKeyString({ deviceId: row.device_id, moduleId }), {
      key: { deviceId: row.device_id, moduleId },
      op: row.op,
      at: row.at,
      partitionId: row.partition_id ?? undefined,
      sequenceNumber: row.sequence_number ?? undefined,
    });
  }
  return marks;
}

async function writeLifecycleMarks(tx: Queryable, marks: readonly LifecycleMark[]): Promise<void> {
  await tx.query(
    `INSERT INTO twin_lifecycle (device_id, module_id, op, at, partition_id, sequence_number)
     SELECT r.device_id, r.module_id, r.op, r.at, r.partition_id, r.sequence_number
       FROM jsonb_to_recordset($1::jsonb) AS r(device_id text, module_id text, op text, at timestamptz, partition_id text, sequence_number bigint)
     ON CONFLICT (device_id, module_id) DO UPDATE SET
       op = EXCLUDED.op, at = EXCLUDED.at, partition_id = EXCLUDED.partition_id, sequence_number = EXCLUDED.sequence_number`,
    [
      JSON.stringify(
        marks.map((m) => ({
          device_id: m.key.deviceId,
          module_id: m.key.moduleId ?? "",
          op: m.op,
          at: m.at,
          partition_id: m.partitionId ?? null,
          sequence_number: m.sequenceNumber ?? null,
        })),
      ),
    ],
  );
}

/** SQLSTATE classes of errors caused by the data written, not by the store: 22 data exception, 23 integrity, 54 program limit. */
const DATA_ERROR_CLASSES = new Set(["22", "23", "54"]);

/**
 * True when `error` is PostgreSQL refusing the data (a value it cannot hold, a constraint, an
 * index row too large): retrying the same batch would fail the same way. Connectivity, transaction
 * and resource failures (08, 40, 53, 57…) and anything that is not an SQL error are not.
 */
export function isDataError(error: unknown): boolean {
  const code = typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) && DATA_ERROR_CLASSES.has(code.slice(0, 2));
}

let savepoints = 0;

/**
 * Runs `work` under a savepoint of the current transaction. A data error rolls back to the
 * savepoint and is returned (the transaction goes on); any other error propagates.
 */
export async function underSavepoint(tx: Queryable, work: () => Promise<void>): Promise<{ failed: unknown } | undefined> {
  const name = `sp_${++savepoints}`;
  await tx.query(`SAVEPOINT ${name}`);
  try {
    await work();
  } catch (error) {
    if (!isDataError(error)) throw error;
    await tx.query(`ROLLBACK TO SAVEPOINT ${name}`);
    await tx.query(`RELEASE SAVEPOINT ${name}`);
    return { failed: error };
  }
  await tx.query(`RELEASE SAVEPOINT ${name}`);
  return undefined;
}

import { z } from "zod";
import { storableJson, type DeadLetter } from "../../shared/events/decodeTwinChanges";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { toTriggerInput } from "../host/toTriggerInput";
import type { Policy } from "../../shared/policy/Policy";
import { readFleetReport, type FleetDevice } from "../../shared/reports/readFleetReport";
import type { StateCounts } from "../../shared/reports/complianceStates";
import { reconcileTwinChanges } from "../../shared/reconcile";
import type { Database } from "../../shared/store/Database";
import { writeBatch } from "../../shared/store/complianceStore";
import type { JsonObject } from "../../shared/twin/json";
import type { ComplianceState } from "../../shared/compliance/ComplianceState";
import type { JsonValue } from "../../shared/reports/jsonValue";
import { twinKeyString } from "../../shared/twin/Twin";
import { readLines } from "./readLines";

/**
 * The longest line replay reads (4 MiB): well above a recorded Event Hubs event (1 MB on the usual
 * tiers), with room for a base64 body and its properties, and far below what one string can hold.
 */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;

/** One line of a replay file: an Event Hubs event as received. */
const lineSchema = z.object({
  body: z.unknown(),
  properties: z.record(z.string(), z.unknown()).default({}),
  systemProperties: z.record(z.string(), z.unknown()).default({}),
  enqueuedTimeUtc: z.string().min(1).refine((s) => !Number.isNaN(Date.parse(s)), "not a time (ISO 8601 expected)"),
  sequenceNumber: z.number().int().nonnegative().optional(),
  offset: z.union([z.string(), z.number()]).optional(),
  partitionId: z.union([z.string(), z.number()]).default("0"),
});

/** A twin as replay prints it: the report API's device and records, fewer fields. */
export interface ReplayDevice {
  deviceId: string;
  moduleId: string | null;
  state: ComplianceState;
  resyncNeeded: boolean;
  properties: Array<{
    path: string;
    reportedPath: string;
    compare: string;
    state: ComplianceState;
    desired: JsonValue;
    reported: JsonValue;
    desiredVersion: number;
    desiredSince: string;
    stateSince: string;
  }>;
}

export interface ReplayReport {
  summary: {
    devices: number;
    properties: number;
    /** Property records by state. */
    byState: StateCounts;
    events: { applied: number; duplicates: number; ignored: number; deadLettered: number };
  };
  devices: ReplayDevice[];
  deadLetters: Array<{ line: number; reason: string }>;
}

export interface ReplayOptions {
  db: Database;
  policy: Policy;
  /** When staleness is judged (default: now). */
  now?: string;
  batchSize?: number;
  /** Lines longer than this (bytes) are skipped as dead letters (default MAX_LINE_BYTES). */
  maxLineBytes?: number;
}

/**
 * Feeds a JSONL file of recorded Event Hubs events through the same handler path as the
 * reconcileTwinChanges function: consecutive lines of one partition form a batch (at most
 * `batchSize`, default 100), shaped by toTriggerInput exactly as the trigger delivers them.
 * A line that is not JSON, not an event or over the length cap is a dead letter (1-based line number)
 * and replay goes on. A UTF-8 BOM before the first line is ignored.
 */
export async function replayFile(file: string, options: ReplayOptions): Promise<ReplayReport> {
  const batchSize = options.batchSize ?? 100;
  const events = { applied: 0, duplicates: 0, ignored: 0, deadLettered: 0 };
  const deadLetters: ReplayReport["deadLetters"] = [];
  let batch: ReceivedEvent[] = [];
  let batchLines: number[] = [];

  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const { messages, triggerMetadata } = await toTriggerInput(batch);
    const result = await reconcileTwinChanges(messages, triggerMetadata, { db: options.db, policy: options.policy });
    events.applied += result.applied;
    events.duplicates += result.duplicates;
    events.ignored += result.ignored;
    events.deadLettered += result.deadLettered;
    for (const { index, reason } of result.deadLetters) deadLetters.push({ line: batchLines[index] ?? 0, reason });
    batch = [];
    batchLines = [];
  };
  const lineDeadLetter = async (line: number, reason: string, raw: unknown): Promise<void> => {
    events.deadLettered++;
    deadLetters.push({ line, reason });
    const letter: DeadLetter = { index: 0, reason: `line ${line}: ${reason}`, deviceId: undefined, partitionId: undefined, sequenceNumber: undefined, raw: storableJson({ line: raw }) as JsonObject };
    await options.db.transaction((tx) => writeBatch(tx, { at: new Date().toISOString(), twins: [], records: [], removed: [], history: [], devices: [], deadLetters: [letter] }));
  };

  const maxLineBytes = options.maxLineBytes ?? MAX_LINE_BYTES;
  for await (const read of readLines(file, maxLineBytes)) {
    const lineNumber = read.number;
    if (!("text" in read)) {
      await lineDeadLetter(lineNumber, `line is ${read.tooLongBytes} bytes, over the ${maxLineBytes}-byte cap; skipped`, { head: read.head, bytes: read.tooLongBytes });
      continue;
    }
    const text = read.text;
    if (text.trim() === "") continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      await lineDeadLetter(lineNumber, "line is not JSON", text);
      continue;
    }
    const line = lineSchema.safeParse(parsed);
    if (!line.success) {
      await lineDeadLetter(lineNumber, `line is not an Event Hubs event: ${line.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`, parsed);
      continue;
    }
    const event: ReceivedEvent = {
      body: line.data.body,
      properties: line.data.properties,
      systemProperties: line.data.systemProperties,
      enqueuedTimeUtc: line.data.enqueuedTimeUtc,
      sequenceNumber: line.data.sequenceNumber ?? lineNumber,
      offset: String(line.data.offset ?? lineNumber),
      partitionId: String(line.data.partitionId),
    };
    if (batch.length > 0 && (batch.length >= batchSize || batch[0]?.partitionId !== event.partitionId)) await flush();
    batch.push(event);
    batchLines.push(lineNumber);
  }
  await flush();

  const fleet = await readFleetReport(options.db, { now: options.now === undefined ? new Date() : new Date(options.now) });
  deadLetters.sort((a, b) => a.line - b.line);
  return {
    summary: { devices: fleet.summary.devices, properties: fleet.summary.properties, byState: fleet.summary.propertiesByState, events },
    devices: fleet.devices.map(toReplayDevice),
    deadLetters,
  };
}

export function toReplayDevice(device: FleetDevice): ReplayDevice {
  return {
    deviceId: device.deviceId,
    moduleId: device.moduleId,
    state: device.state,
    resyncNeeded: device.resyncNeededSince !== null,
    properties: device.properties.map((p) => ({
      path: p.path,
      reportedPath: p.reportedPath,
      compare: p.compare,
      state: p.state,
      desired: p.desired,
      reported: p.reported,
      desiredVersion: p.desiredVersion,
      desiredSince: p.desiredSince,
      stateSince: p.stateSince,
    })),
  };
}

/** A plain-text rendering of a replay report for a terminal. */
export function formatReplayReport(report: ReplayReport): string {
  const { summary } = report;
  const out: string[] = [];
  out.push(
    `${summary.devices} devices, ${summary.properties} properties — ` +
      Object.entries(summary.byState).map(([state, n]) => `${state} ${n}`).join(", "),
  );
  out.push(`events: applied ${summary.events.applied}, duplicates ${summary.events.duplicates}, ignored ${summary.events.ignored}, dead-lettered ${summary.events.deadLettered}`);
  const rows: string[][] = [["DEVICE", "PROPERTY", "REPORTED AT", "COMPARE", "STATE", "DESIRED", "REPORTED"]];
  for (const device of report.devices) {
    const id = twinKeyString({ deviceId: device.deviceId, moduleId: device.moduleId || null });
    rows.push([`${id} (${device.state}${device.resyncNeeded ? ", resync needed" : ""})`, "", "", "", "", "", ""]);
    for (const p of device.properties) {
      rows.push(["", p.path, p.reportedPath === p.path ? "" : p.reportedPath, p.compare, p.state, short(p.desired), short(p.reported)]);
    }
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  out.push("", ...rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join("  ").trimEnd()));
  if (report.deadLetters.length > 0) {
    out.push("", "dead letters:", ...report.deadLetters.map((d) => `  line ${d.line}: ${d.reason}`));
  }
  return out.join("\n");
}

function short(value: unknown): string {
  if (value === null || value === undefined) return "—";
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

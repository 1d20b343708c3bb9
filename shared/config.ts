import { Cron, CronPattern } from "croner";
import { z } from "zod";
import { MAX_DURATION_MS, parseDuration } from "./policy/parseDuration";
import { redact } from "./redact";

/**
 * Every setting the app reads, validated with zod. `localOnly` settings are never set in Azure
 * (secrets-by-value, the local IoT Hub emulator, PGlite): infra/main.bicep sets exactly the others,
 * which test/infra/infraMatchesCode.test.ts checks. `secret` settings are never echoed in errors.
 */
interface SettingMeta {
  description: string;
  localOnly?: true;
  secret?: true;
}

/** Thrown by a setting's parser; the message says what is wrong and must not contain the value. */
class SettingProblem extends Error {}

/** An optional setting (unset or empty) parsed by `parse`, whose thrown message becomes the setting's problem. */
function setting<T>(meta: SettingMeta, parse: (raw: string) => T) {
  return z
    .string()
    .optional()
    .transform((raw, ctx): T | undefined => {
      if (raw === undefined) return undefined;
      try {
        return parse(raw);
      } catch (error) {
        const message = error instanceof SettingProblem || !meta.secret ? (error as Error).message : "is not valid";
        ctx.addIssue({ code: "custom", message });
        return z.NEVER;
      }
    })
    .meta({ ...meta });
}

const text = (raw: string) => raw;

function integer(min: number, max: number) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw)) throw new SettingProblem(`must be a whole number from ${min} to ${max}`);
    const value = Number(raw);
    if (value < min || value > max) throw new SettingProblem(`must be a whole number from ${min} to ${max}`);
    return value;
  };
}

function decimal(min: number, max: number) {
  return (raw: string): number => {
    const value = Number(raw);
    if (!/^\d{1,9}(\.\d{1,9})?$/.test(raw) || value < min || value > max) throw new SettingProblem(`must be a number from ${min} to ${max}`);
    return value;
  };
}

/** A duration from `min` to `max` (e.g. 2m, PT10M), at most a year; a duration a timer waits for must stay within 24.8 days. */
function duration(min: string, max: string) {
  const bounds = { minMs: parseDuration(min, { maxMs: MAX_DURATION_MS }), maxMs: parseDuration(max, { maxMs: MAX_DURATION_MS }) };
  return (raw: string): number => {
    try {
      return parseDuration(raw, bounds);
    } catch (error) {
      throw new SettingProblem(`${(error as Error).message} (a duration from ${min} to ${max})`);
    }
  };
}

function boolean(raw: string): boolean {
  const value = raw.toLowerCase();
  if (["true", "1", "yes"].includes(value)) return true;
  if (["false", "0", "no"].includes(value)) return false;
  throw new SettingProblem("must be true or false");
}

function postgresUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new SettingProblem("must be a postgres:// or postgresql:// URL (value not shown: it may hold a password)");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new SettingProblem("must be a postgres:// or postgresql:// URL (value not shown: it may hold a password)");
  }
  return raw;
}

function iothubConnectionString(raw: string): string {
  const parts = new Map(
    raw.split(";").filter(Boolean).map((part) => {
      const at = part.indexOf("=");
      return [at < 0 ? part : part.slice(0, at), at < 0 ? "" : part.slice(at + 1)] as const;
    }),
  );
  if (parts.has("DeviceId")) {
    throw new SettingProblem("is a device connection string; use the hub's service connection string (policy iothubowner or service)");
  }
  if (!parts.get("HostName") || !parts.get("SharedAccessKeyName") || !parts.get("SharedAccessKey")) {
    throw new SettingProblem("must be an IoT Hub connection string: HostName=…;SharedAccessKeyName=…;SharedAccessKey=… (value not shown)");
  }
  return raw;
}

function hostName(raw: string): string {
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$/.test(raw)) {
    throw new SettingProblem("must be a host name such as my-hub.azure-devices.net (no https://, no path)");
  }
  return raw;
}

function jsonObject(raw: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new SettingProblem("is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new SettingProblem("must be a JSON object");
  return value as Record<string, unknown>;
}

// Event hub and consumer group names: letters, digits, '.', '-', '_', starting and ending with a letter or digit.
function entityName(raw: string): string {
  if (!/^[A-Za-z0-9]([A-Za-z0-9._-]{0,254}[A-Za-z0-9])?$/.test(raw)) {
    throw new SettingProblem("must be 1-256 letters, digits, '.', '-' or '_', starting and ending with a letter or digit");
  }
  return raw;
}

function consumerGroup(raw: string): string {
  return raw === "$Default" ? raw : entityName(raw);
}

function ncrontab(raw: string): string {
  const fields = raw.trim().split(/\s+/);
  if (fields.length !== 6) throw new SettingProblem(`must be an NCRONTAB expression with 6 fields ({second} {minute} {hour} {day} {month} {day-of-week}), e.g. "0 * * * * *"; got ${fields.length}`);
  try {
    new CronPattern(raw, undefined, { mode: "6-part" });
  } catch (error) {
    throw new SettingProblem(`is not a valid NCRONTAB expression: ${(error as Error).message}`);
  }
  // A valid pattern may name no real date (31 April): the timer would never run.
  const cron = new Cron(raw, { mode: "6-part", timezone: "UTC", paused: true });
  const next = cron.nextRun();
  cron.stop();
  if (next === null) throw new SettingProblem("never fires (no date matches it, e.g. day 31 of a 30-day month)");
  return raw;
}

function uuid(raw: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(raw)) throw new SettingProblem("must be a client ID (a GUID)");
  return raw;
}

/** Connections per instance when POSTGRES_POOL_MAX is unset. */
export const DEFAULT_POSTGRES_POOL_MAX = 5;

/** The environment schema: one key per setting name, with its metadata (`.meta()`). */
export const settingsSchema = z.object({
  DATABASE_URL: setting({ description: "PostgreSQL URL (local/CI); in Azure use POSTGRES_* with Entra auth", localOnly: true, secret: true }, postgresUrl),
  POSTGRES_HOST: setting({ description: "Azure Database for PostgreSQL host (Entra token auth)" }, hostName),
  POSTGRES_PORT: setting({ description: "PostgreSQL port (default 5432)" }, integer(1, 65535)),
  POSTGRES_DATABASE: setting({ description: "PostgreSQL database name" }, text),
  POSTGRES_USER: setting({ description: "Entra principal name the app signs in as (its managed identity's name)" }, text),
  // Per instance: maximumInstanceCount × this must stay under the server's connection limit (infra/main.bicep checks it).
  POSTGRES_POOL_MAX: setting({ description: `PostgreSQL connections each instance may open (default ${DEFAULT_POSTGRES_POOL_MAX})` }, integer(1, 100)),
  PGLITE_DATA_DIR: setting({ description: "PGlite data folder (default .data/pglite; 'memory' = in memory)", localOnly: true }, text),
  IOTHUB_CONNECTION_STRING: setting({ description: "IoT Hub service connection string (local emulator)", localOnly: true, secret: true }, iothubConnectionString),
  IOTHUB_HOST_NAME: setting({ description: "IoT Hub host name, reached with the managed identity" }, hostName),
  IOTHUB_EMULATOR_PORT: setting({ description: "HTTPS port of the local IoT Hub emulator", localOnly: true }, integer(1, 65535)),
  IOTHUB_EMULATOR_CA_FILE: setting({ description: "CA certificate (PEM) of the local IoT Hub emulator", localOnly: true }, text),
  // Below 0.1/s the limiter would wait longer than a timer can (and a run would stall for minutes per twin).
  HUB_TWIN_OPS_PER_SECOND: setting({ description: "Token-bucket rate shared by every twin read and update (default 10)" }, decimal(0.1, 10_000)),
  POLICY_PATH: setting({ description: "Compliance policy JSON file" }, text),
  POLICY_JSON: setting({ description: "Compliance policy as inline JSON" }, jsonObject),
  TWIN_EVENTS_HUB_NAME: setting({ description: "Event hub the twin-change route feeds (default twin-changes)" }, entityName),
  TWIN_EVENTS_CONSUMER_GROUP: setting({ description: "Consumer group of the reconcile trigger (default $Default)" }, consumerGroup),
  REPUSH_SCHEDULE: setting({ description: "NCRONTAB schedule of the re-push timer (default every minute)" }, ncrontab),
  REPUSH_MAX_DEVICES_PER_RUN: setting({ description: "Devices re-pushed per timer run at most (default 100)" }, integer(1, 100_000)),
  REPUSH_BACKOFF_BASE: setting({ description: "First re-push back-off (default 2m)" }, duration("1s", "1d")),
  REPUSH_BACKOFF_CAP: setting({ description: "Longest re-push back-off (default 1h)" }, duration("1s", "7d")),
  REPUSH_MAX_ATTEMPTS: setting({ description: "Re-pushes before a property is escalated (default 5)" }, integer(1, 1000)),
  REPUSH_DRY_RUN: setting({ description: "Decide re-pushes but never write twins (default false)" }, boolean),
  REPUSH_LEASE: setting({ description: "How long a timer run holds its claim on a device (default 5m)" }, duration("1s", "1d")),
  // Retention timer (pruneRetention): what the store keeps only for a while, pruned in chunks.
  HISTORY_RETENTION: setting({ description: "Property history kept for this long (default 90d)" }, duration("1d", "365d")),
  DEAD_LETTER_RETENTION: setting({ description: "Dead letters kept for this long (default 30d)" }, duration("1d", "365d")),
  RETENTION_SCHEDULE: setting({ description: "NCRONTAB schedule of the retention timer (default hourly)" }, ncrontab),
  AZURE_CLIENT_ID: setting({ description: "Client ID of the user-assigned managed identity (DefaultAzureCredential)" }, uuid),
  // Fleet sync and the resync queue (shared/sync).
  FLEET_SYNC_SCHEDULE: setting({ description: "NCRONTAB schedule that starts a fleet sync pass (default daily, 03:00)" }, ncrontab),
  FLEET_SYNC_PAGE_SIZE: setting({ description: "Twins per twin-query page (x-ms-max-item-count; default 1000)" }, integer(1, 10_000)),
  FLEET_SYNC_RUN_BUDGET: setting({ description: "How long one timer run works on a sync pass before saving its place (default 4m)" }, duration("10s", "1h")),
  HUB_QUERIES_PER_MINUTE: setting({ description: "Twin queries per minute the app may use (default 20: S1, one unit)" }, integer(1, 10_000)),
  RESYNC_SCHEDULE: setting({ description: "NCRONTAB schedule of the resync queue, which also continues an unfinished pass (default every minute)" }, ncrontab),
  RESYNC_BACKOFF_BASE: setting({ description: "First back-off of a twin whose resync failed (default 1m)" }, duration("1s", "1d")),
  RESYNC_BACKOFF_CAP: setting({ description: "Longest resync back-off (default 1h)" }, duration("1s", "7d")),
});

type SettingName = keyof typeof settingsSchema.shape;

/** Every setting name the schema reads. */
export const settingNames: readonly string[] = Object.keys(settingsSchema.shape);

/** The settings that are only for this machine (never set in Azure). */
export const localOnlySettingNames: readonly string[] = settingNames.filter(
  (name) => (settingsSchema.shape[name as SettingName].meta() as SettingMeta | undefined)?.localOnly === true,
);

export type StoreConfig =
  /** poolMax: connections this process may open (POSTGRES_POOL_MAX); unset: DEFAULT_POSTGRES_POOL_MAX. */
  | { kind: "postgres"; connectionString: string; poolMax?: number }
  | { kind: "postgresEntra"; host: string; port: number; database: string; user: string; clientId: string | undefined; poolMax?: number }
  /** dataDir null = in memory. */
  | { kind: "pglite"; dataDir: string | null };

export type HubConfig =
  | { kind: "connectionString"; connectionString: string; emulator: { port: number | undefined; caFile: string | undefined } | undefined }
  | { kind: "identity"; hostName: string; clientId: string | undefined }
  /** No hub: resync from the hub and re-push are disabled. */
  | { kind: "none" };

export type PolicySource = { kind: "file"; path: string } | { kind: "inline"; json: Record<string, unknown> } | { kind: "default" };

export interface RepushConfig {
  schedule: string;
  maxDevicesPerRun: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  maxAttempts: number;
  dryRun: boolean;
  leaseMs: number;
}

export interface RetentionConfig {
  schedule: string;
  historyMs: number;
  deadLetterMs: number;
}

export interface FleetSyncConfig {
  schedule: string;
  pageSize: number;
  runBudgetMs: number;
  queriesPerMinute: number;
  resyncSchedule: string;
  resyncBackoffBaseMs: number;
  resyncBackoffCapMs: number;
}

export interface Config {
  store: StoreConfig;
  hub: HubConfig;
  hubTwinOpsPerSecond: number;
  policy: PolicySource;
  twinEvents: { hubName: string; consumerGroup: string };
  repush: RepushConfig;
  retention: RetentionConfig;
  fleetSync: FleetSyncConfig;
  azureClientId: string | undefined;
}

export interface SettingIssue {
  setting: string;
  problem: string;
}

/** Invalid settings: `issues` names each one; the message lists them as `NAME: problem`, never with a secret value. */
export class ConfigError extends Error {
  readonly code = "CONFIG_INVALID";
  constructor(readonly issues: readonly SettingIssue[]) {
    super(redact(`Invalid settings (${issues.length}):\n${issues.map((i) => `  ${i.setting}: ${i.problem}`).join("\n")}`));
    this.name = "ConfigError";
  }
}

const orDefault = <T>(value: T | undefined, fallback: T): T => (value === undefined ? fallback : value);

/** Reads and validates every setting; throws one ConfigError naming every bad setting. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Azure app settings and .env files often carry a setting as an empty string: that means unset.
  const raw: Record<string, string | undefined> = {};
  for (const name of settingNames) {
    const value = env[name]?.trim();
    raw[name] = value === undefined || value === "" ? undefined : value;
  }
  const issues: SettingIssue[] = [];
  const parsed = settingsSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) issues.push({ setting: String(issue.path[0] ?? "(settings)"), problem: issue.message });
  }
  issues.push(...crossSettingIssues(raw));
  if (parsed.success) {
    const { REPUSH_BACKOFF_BASE: base, REPUSH_BACKOFF_CAP: cap } = parsed.data;
    if (orDefault(cap, 3_600_000) < orDefault(base, 120_000)) {
      issues.push({ setting: "REPUSH_BACKOFF_CAP", problem: "must be at least REPUSH_BACKOFF_BASE" });
    }
    if (orDefault(parsed.data.RESYNC_BACKOFF_CAP, 3_600_000) < orDefault(parsed.data.RESYNC_BACKOFF_BASE, 60_000)) {
      issues.push({ setting: "RESYNC_BACKOFF_CAP", problem: "must be at least RESYNC_BACKOFF_BASE" });
    }
  }
  if (!parsed.success || issues.length > 0) throw new ConfigError(issues);
  const s = parsed.data;

  // Unset: left out, and openPostgres uses DEFAULT_POSTGRES_POOL_MAX.
  const poolMax = s.POSTGRES_POOL_MAX === undefined ? {} : { poolMax: s.POSTGRES_POOL_MAX };
  const store: StoreConfig =
    s.DATABASE_URL !== undefined
      ? { kind: "postgres", connectionString: s.DATABASE_URL, ...poolMax }
      : s.POSTGRES_HOST !== undefined
        ? {
            kind: "postgresEntra",
            host: s.POSTGRES_HOST,
            port: orDefault(s.POSTGRES_PORT, 5432),
            database: s.POSTGRES_DATABASE ?? "",
            user: s.POSTGRES_USER ?? "",
            clientId: s.AZURE_CLIENT_ID,
            ...poolMax,
          }
        : { kind: "pglite", dataDir: s.PGLITE_DATA_DIR === "memory" ? null : orDefault(s.PGLITE_DATA_DIR, ".data/pglite") };

  const emulator =
    s.IOTHUB_EMULATOR_PORT !== undefined || s.IOTHUB_EMULATOR_CA_FILE !== undefined
      ? { port: s.IOTHUB_EMULATOR_PORT, caFile: s.IOTHUB_EMULATOR_CA_FILE }
      : undefined;
  const hub: HubConfig =
    s.IOTHUB_CONNECTION_STRING !== undefined
      ? { kind: "connectionString", connectionString: s.IOTHUB_CONNECTION_STRING, emulator }
      : s.IOTHUB_HOST_NAME !== undefined
        ? { kind: "identity", hostName: s.IOTHUB_HOST_NAME, clientId: s.AZURE_CLIENT_ID }
        : { kind: "none" };

  const policy: PolicySource =
    s.POLICY_PATH !== undefined
      ? { kind: "file", path: s.POLICY_PATH }
      : s.POLICY_JSON !== undefined
        ? { kind: "inline", json: s.POLICY_JSON }
        : { kind: "default" };

  return {
    store,
    hub,
    hubTwinOpsPerSecond: orDefault(s.HUB_TWIN_OPS_PER_SECOND, 10),
    policy,
    twinEvents: {
      hubName: orDefault(s.TWIN_EVENTS_HUB_NAME, "twin-changes"),
      consumerGroup: orDefault(s.TWIN_EVENTS_CONSUMER_GROUP, "$Default"),
    },
    repush: {
      schedule: orDefault(s.REPUSH_SCHEDULE, "0 * * * * *"),
      maxDevicesPerRun: orDefault(s.REPUSH_MAX_DEVICES_PER_RUN, 100),
      backoffBaseMs: orDefault(s.REPUSH_BACKOFF_BASE, 120_000),
      backoffCapMs: orDefault(s.REPUSH_BACKOFF_CAP, 3_600_000),
      maxAttempts: orDefault(s.REPUSH_MAX_ATTEMPTS, 5),
      dryRun: orDefault(s.REPUSH_DRY_RUN, false),
      leaseMs: orDefault(s.REPUSH_LEASE, 300_000),
    },
    retention: {
      schedule: orDefault(s.RETENTION_SCHEDULE, "0 0 * * * *"),
      historyMs: orDefault(s.HISTORY_RETENTION, 90 * 86_400_000),
      deadLetterMs: orDefault(s.DEAD_LETTER_RETENTION, 30 * 86_400_000),
    },
    fleetSync: {
      schedule: orDefault(s.FLEET_SYNC_SCHEDULE, "0 0 3 * * *"),
      pageSize: orDefault(s.FLEET_SYNC_PAGE_SIZE, 1000),
      runBudgetMs: orDefault(s.FLEET_SYNC_RUN_BUDGET, 240_000),
      queriesPerMinute: orDefault(s.HUB_QUERIES_PER_MINUTE, 20),
      resyncSchedule: orDefault(s.RESYNC_SCHEDULE, "30 * * * * *"),
      resyncBackoffBaseMs: orDefault(s.RESYNC_BACKOFF_BASE, 60_000),
      resyncBackoffCapMs: orDefault(s.RESYNC_BACKOFF_CAP, 3_600_000),
    },
    azureClientId: s.AZURE_CLIENT_ID,
  };
}

/** Settings that exclude or require each other (presence only, so it runs even when values are bad). */
function crossSettingIssues(raw: Record<string, string | undefined>): SettingIssue[] {
  const has = (name: SettingName) => raw[name] !== undefined;
  const issues: SettingIssue[] = [];
  const postgresParts = ["POSTGRES_HOST", "POSTGRES_DATABASE", "POSTGRES_USER"] as const;
  const anyPostgres = postgresParts.some(has) || has("POSTGRES_PORT");
  if (has("DATABASE_URL") && anyPostgres) {
    issues.push({ setting: "DATABASE_URL", problem: "set either DATABASE_URL or POSTGRES_HOST/POSTGRES_DATABASE/POSTGRES_USER, not both" });
  } else if (anyPostgres) {
    for (const name of postgresParts) {
      if (!has(name)) issues.push({ setting: name, problem: "is required with the other POSTGRES_* settings (Entra token auth needs host, database and user)" });
    }
  }
  if (has("IOTHUB_CONNECTION_STRING") && has("IOTHUB_HOST_NAME")) {
    issues.push({ setting: "IOTHUB_HOST_NAME", problem: "set either IOTHUB_CONNECTION_STRING or IOTHUB_HOST_NAME, not both" });
  }
  for (const name of ["IOTHUB_EMULATOR_PORT", "IOTHUB_EMULATOR_CA_FILE"] as const) {
    if (has(name) && !has("IOTHUB_CONNECTION_STRING")) {
      issues.push({ setting: name, problem: "is for the local IoT Hub emulator and needs IOTHUB_CONNECTION_STRING" });
    }
  }
  if (has("POLICY_PATH") && has("POLICY_JSON")) {
    issues.push({ setting: "POLICY_JSON", problem: "set either POLICY_PATH or POLICY_JSON, not both" });
  }
  return issues;
}

/**
 * The marker of an Azure Functions instance in `env`, or undefined. The Functions host's own markers
 * (azure-functions-host EnvironmentSettingNames): App Service plans set WEBSITE_INSTANCE_ID, Flex
 * Consumption WEBSITE_SKU=FlexConsumption (with WEBSITE_POD_NAME and CONTAINER_NAME), Linux Consumption
 * CONTAINER_NAME. CONTAINER_NAME alone is too common (container runtimes and CI machines set it), so it
 * and WEBSITE_POD_NAME count only beside WEBSITE_SITE_NAME, the app's name, which the platform sets on
 * every instance. Core Tools (`func start`, on a developer's machine) sets FUNCTIONS_CORETOOLS_ENVIRONMENT.
 * These are the platform's variables, not settings: loadConfig never reads them; openStore does.
 */
export function azureFunctionsMarker(env: Record<string, string | undefined>): string | undefined {
  const set = (name: string) => (env[name]?.trim() ?? "") !== "";
  if (set("FUNCTIONS_CORETOOLS_ENVIRONMENT")) return undefined;
  if (env.WEBSITE_SKU?.trim() === "FlexConsumption") return "WEBSITE_SKU=FlexConsumption";
  if (set("WEBSITE_INSTANCE_ID")) return "WEBSITE_INSTANCE_ID";
  const container = ["WEBSITE_POD_NAME", "CONTAINER_NAME"].find(set);
  return container !== undefined && set("WEBSITE_SITE_NAME") ? `${container} and WEBSITE_SITE_NAME` : undefined;
}

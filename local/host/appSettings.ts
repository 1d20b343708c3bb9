import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { isRecord } from "./functionRegistration";

const repoRoot = path.resolve(__dirname, "..", "..");

/**
 * App settings that local.settings.json and the environment may override: the embedded default
 * (PGlite in .data/, the demo policy, the twin-change hub's names). Connection settings of the
 * emulator (its connection string, ports, CA file) are only known once it runs: the caller
 * passes them as overrides.
 */
export const defaultAppSettings: Readonly<Record<string, string>> = {
  FUNCTIONS_WORKER_RUNTIME: "node",
  AzureWebJobsStorage: "UseDevelopmentStorage=true",
  PGLITE_DATA_DIR: path.join(repoRoot, ".data", "pglite"),
  POLICY_PATH: path.join(repoRoot, "local", "demo-policy.json"),
  TWIN_EVENTS_HUB_NAME: "twin-changes",
  TWIN_EVENTS_CONSUMER_GROUP: "$Default",
  REPUSH_SCHEDULE: "0 * * * * *",
  RETENTION_SCHEDULE: "0 0 * * * *",
  FLEET_SYNC_SCHEDULE: "0 0 3 * * *",
  RESYNC_SCHEDULE: "30 * * * * *",
};

/**
 * Built-in defaults that a setting of the user's replaces instead of joining: the config refuses
 * POLICY_PATH and POLICY_JSON together, and a user's POLICY_JSON must win over the demo's POLICY_PATH.
 */
const replacedBy: Readonly<Record<string, readonly string[]>> = { POLICY_PATH: ["POLICY_JSON"] };

/** `defaults` without those that a setting in `explicit` (environment, local.settings.json, overrides) replaces. */
export function defaultsNotReplaced(defaults: Record<string, string>, explicit: readonly Record<string, string | undefined>[]): Record<string, string> {
  const isSet = (name: string) => explicit.some((source) => source[name] !== undefined && source[name]?.trim() !== "");
  return Object.fromEntries(Object.entries(defaults).filter(([name]) => !(replacedBy[name] ?? []).some(isSet)));
}

export interface LocalSettings {
  /** `Values` of local.settings.json (empty without the file). */
  values: Record<string, string>;
  /** `Host.LocalHttpPort` of local.settings.json, when given. */
  localHttpPort?: number;
  source: "local.settings.json" | "defaults";
}

/** local.settings.json is there but unusable: the message names the file and what is wrong (it never quotes a value). */
export class LocalSettingsError extends Error {
  override readonly name = "LocalSettingsError";
}

/** Reads `local.settings.json` from `rootDir`, as `func start` does; throws LocalSettingsError when it is malformed. */
export function readLocalSettings(rootDir: string): LocalSettings {
  const file = path.join(rootDir, "local.settings.json");
  if (!existsSync(file)) return { values: {}, source: "defaults" };
  const bad = (what: string) => new LocalSettingsError(`${file}: ${what}; fix it or remove the file to use the defaults`);
  const text = readFileSync(file, "utf8");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    // JSON.parse quotes the text around the error, which may be a connection string: give only where it is.
    throw bad(`is not valid JSON${jsonErrorPlace(text, (error as Error).message)}`);
  }
  if (!isRecord(parsed)) throw bad("must be a JSON object with a \"Values\" object");
  if (parsed.Values !== undefined && !isRecord(parsed.Values)) throw bad("\"Values\" must be an object of setting names to strings");
  const values: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed.Values ?? {})) {
    if (typeof value !== "string") throw bad(`Values.${key} must be a string (it is ${value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`}): quote it`);
    values[key] = value;
  }
  const settings: LocalSettings = { values, source: "local.settings.json" };
  if (isRecord(parsed.Host) && typeof parsed.Host.LocalHttpPort === "number") {
    settings.localHttpPort = parsed.Host.LocalHttpPort;
  }
  return settings;
}

/** Where JSON.parse stopped, as " at line L, column C" (or that the text ends too early); nothing when it does not say. */
function jsonErrorPlace(text: string, message: string): string {
  const position = /at position (\d+)/.exec(message)?.[1];
  if (position === undefined) return /end of JSON input/i.test(message) ? " (it ends too early)" : "";
  if (Number(position) >= text.trimEnd().length) return " (it ends too early)";
  const before = text.slice(0, Number(position)).split("\n");
  return ` at line ${before.length}, column ${before.at(-1)!.length + 1}`;
}

/**
 * Puts settings into `process.env` the way Core Tools do: a variable already set in the
 * environment wins over `values` (defaults, then local.settings.json); `overrides` win over both.
 * Returns a function that restores the environment as it was.
 */
export function applyAppSettings(values: Record<string, string>, overrides: Record<string, string> = {}): () => void {
  const previous = new Map<string, string | undefined>();
  const set = (key: string, value: string) => {
    if (!previous.has(key)) previous.set(key, process.env[key]);
    process.env[key] = value;
  };
  for (const [key, value] of Object.entries(values)) if (process.env[key] === undefined) set(key, value);
  for (const [key, value] of Object.entries(overrides)) set(key, value);
  return () => {
    for (const [key, value] of previous) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}

/** Resolves `%SETTING%` references in a binding property (eventHubName, consumerGroup, schedule…). */
export function resolveAppSettingReferences(value: string, what: string, env: NodeJS.ProcessEnv = process.env): string {
  return value.replace(/%([^%]+)%/g, (_match, name: string) => {
    const setting = env[name];
    if (setting === undefined || setting === "") {
      throw new Error(`${what} refers to app setting %${name}%, which is not set: add it to local.settings.json Values or the environment`);
    }
    return setting;
  });
}

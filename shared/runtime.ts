import { loadConfig, type Config } from "./config";
import type { TwinRegistry } from "./hub/TwinRegistry";
import { createTwinRegistry } from "./hub/createTwinRegistry";
import { loadPolicy } from "./loadPolicy";
import type { Policy } from "./policy/Policy";
import type { Database } from "./store/Database";
import { openStore } from "./store/openStore";
import { readStoreGauges } from "./reports/readStoreGauges";
import { observeStore, startTelemetry } from "./telemetry/startTelemetry";

/** What every function needs, built once per process from the app settings. */
export interface Runtime {
  config: Config;
  db: Database;
  policy: Policy;
  /** IoT Hub (rate-limited), or undefined when none is configured. */
  registry: TwinRegistry | undefined;
}

let runtime: Promise<Runtime> | undefined;
let storeOverride: Database | undefined;

/**
 * Uses `db` as the runtime's store instead of opening one from the settings (tests that need a
 * store of their own making, e.g. one that can be taken down); `undefined` goes back to the settings.
 * Call before the first getRuntime() of the process, or after closeRuntime().
 */
export function useRuntimeStore(db: Database | undefined): void {
  storeOverride = db;
}

/**
 * The process-wide runtime, created on first use. A failure (bad setting, store unreachable) is
 * thrown to the caller — so a trigger's retry policy re-delivers — and retried on the next call.
 */
export function getRuntime(env: Record<string, string | undefined> = process.env): Promise<Runtime> {
  runtime ??= createRuntime(env).catch((error: unknown) => {
    runtime = undefined;
    throw error;
  });
  return runtime;
}

/** Closes the store and forgets the runtime (local host shutdown, tests). */
export async function closeRuntime(): Promise<void> {
  const current = runtime;
  runtime = undefined;
  const closing = await current?.catch(() => undefined);
  if (closing) observeStore(undefined, readStoreGauges);
  if (closing && closing.db !== storeOverride) await closing.db.close();
}

async function createRuntime(env: Record<string, string | undefined>): Promise<Runtime> {
  const config = loadConfig(env);
  // Before the rate limiters exist: they record their waits (startTelemetry.ts says where metrics go).
  startTelemetry(env);
  const policy = loadPolicy(config.policy);
  // Rate-limited by one bucket per process: resyncs and re-pushes share HUB_TWIN_OPS_PER_SECOND.
  const registry = createTwinRegistry(config) ?? undefined;
  const db = storeOverride ?? (await openStore(config));
  observeStore(db, readStoreGauges);
  return { config, db, policy, registry };
}

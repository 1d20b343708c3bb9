import { getRuntime } from "../runtime";
import type { Database } from "../store/Database";

let override: Database | undefined;

/**
 * The process's store: the one the shared runtime opened and migrated (loadConfig + openStore, once
 * per process), so the reports never open a second PGlite on the same data folder.
 */
export async function getStore(): Promise<Database> {
  return override ?? (await getRuntime()).db;
}

/** Uses `db` instead of the runtime's store (tests); `undefined` goes back to the runtime's. */
export function useStore(db: Database | undefined): void {
  override = db;
}

import type { Database } from "../../shared/store/Database";
import { testDatabases } from "../support/testDatabases";

/** A migrated, empty store and how to dispose of it. */
export interface TestStore {
  db: Database;
  dispose(): Promise<void>;
}

export type StoreFactory = () => Promise<TestStore>;

/**
 * The stores every report suite runs on (test/support/testDatabases): PGlite always; PostgreSQL too
 * when DATABASE_URL is set, in a schema of its own that close() drops.
 */
export function reportStores(): [string, StoreFactory][] {
  return testDatabases.map((t): [string, StoreFactory] => [
    t.name === "pglite" ? "PGlite" : "PostgreSQL",
    async () => {
      const db = await t.open();
      return { db, dispose: () => db.close() };
    },
  ]);
}

import type { Database } from "../../shared/store/Database";

/**
 * A store that fails every statement as a lost PostgreSQL connection does, behind the `Database`
 * interface. Limits: it fails at once and always (no partial results, no recovery); a real outage
 * is in test/integration/storeOutage.test.ts, one that starts mid-transaction in outageStore.ts.
 */
export function failingStore(message = "Connection terminated unexpectedly"): Database {
  const fail = async (): Promise<never> => {
    throw new Error(message);
  };
  return { kind: "postgres", query: fail, transaction: fail, close: async () => undefined };
}

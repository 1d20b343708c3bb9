/**
 * A store that can be taken down, behind the `Database` interface (the team's rule: fakes only
 * behind a public interface). It passes everything through to a real store (PGlite or PostgreSQL)
 * and, once `failNextTransaction(outageMs)` is armed, breaks the next transaction after its first
 * statement (as a connection lost mid-batch does) and then refuses every query and transaction
 * for `outageMs` with the error pg raises for a dropped server.
 *
 * Limits: the failure is simulated at the port, not on the wire (the real server-kill test is
 * test/integration/storeOutage.test.ts); statements already sent complete as the real store does
 * them, and the broken transaction is rolled back on the real store.
 */
import type { Database, Queryable } from "../../shared/store/Database";

export interface OutageStore extends Database {
  /** Breaks the next transaction after its first statement, then keeps the store down for `outageMs`. */
  failNextTransaction(outageMs: number): void;
  /** Resolves when an armed outage has started (the broken transaction threw). */
  readonly outageStarted: Promise<void>;
  /** Transactions that failed because of the outage. */
  readonly failures: number;
}

export function outageStore(inner: Database): OutageStore {
  let armedMs: number | undefined;
  let downUntil = 0;
  let failures = 0;
  let started!: () => void;
  let outageStarted = new Promise<void>((resolve) => (started = resolve));
  const lost = () => Object.assign(new Error("Connection terminated unexpectedly"), { code: "57P01" });
  const checkUp = () => {
    if (Date.now() < downUntil) {
      failures++;
      throw lost();
    }
  };
  return {
    kind: inner.kind,
    get failures() {
      return failures;
    },
    get outageStarted() {
      return outageStarted;
    },
    failNextTransaction(outageMs: number) {
      armedMs = outageMs;
      outageStarted = new Promise<void>((resolve) => (started = resolve));
    },
    async query<Row>(sql: string, params?: readonly unknown[]) {
      checkUp();
      return inner.query<Row>(sql, params);
    },
    async transaction(work) {
      checkUp();
      const breakThis = armedMs;
      armedMs = undefined;
      return inner.transaction(async (tx) => {
        let statements = 0;
        const wrapped: Queryable = {
          async query<Row>(sql: string, params?: readonly unknown[]) {
            checkUp();
            const result = await tx.query<Row>(sql, params);
            if (breakThis !== undefined && ++statements === 1) {
              downUntil = Date.now() + breakThis;
              failures++;
              started();
              throw lost();
            }
            return result;
          },
        };
        return work(wrapped);
      });
    },
    close: () => inner.close(),
  };
}

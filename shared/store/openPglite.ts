import { PGlite } from "@electric-sql/pglite";
import type { Database, Queryable } from "./Database";

/**
 * Opens PGlite (PostgreSQL compiled to WebAssembly, in this process): in memory when `dataDir` is
 * undefined, else in that folder. Booting takes about two seconds.
 */
export async function openPglite(dataDir?: string): Promise<Database> {
  const db = await PGlite.create(dataDir);
  // PGlite runs one statement at a time; a transaction must not interleave with other queries,
  // so every call goes through one queue.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => undefined);
    return next;
  };
  return {
    kind: "pglite",
    query(sql, params = []) {
      return serial(async () => ({ rows: (await db.query(sql, params as unknown[])).rows as never[] }));
    },
    transaction(work) {
      return serial(() =>
        db.transaction(async (t) => {
          const tx: Queryable = {
            async query(sql, params = []) {
              return { rows: (await t.query(sql, params as unknown[])).rows as never[] };
            },
          };
          return work(tx);
        }),
      );
    },
    async close() {
      await queue.catch(() => undefined);
      await db.close();
    },
  };
}

import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { PGlite } from "@electric-sql/pglite";
import type { Database, Queryable } from "./Database";

export interface PgliteOptions {
  /** How long to wait for a folder held by another process to be released, e.g. one still shutting down (default 5 s). */
  lockWaitMs?: number;
}

/** The PGlite data folder is held by another live process (PGlite is one process per folder). */
export class StoreInUseError extends Error {
  override readonly name = "StoreInUseError";
  readonly code = "STORE_IN_USE";
  constructor(
    readonly dataDir: string,
    readonly pid: number,
    readonly lockFile: string,
  ) {
    super(
      `the PGlite data folder ${dataDir} is in use by process ${pid}${pid === process.pid ? " (this process)" : ""}: ` +
        `stop that process (another npm start, or one still shutting down) or set PGLITE_DATA_DIR to another folder or to memory. ` +
        `If no such process runs, delete ${lockFile}.`,
    );
  }
}

/**
 * Opens PGlite (PostgreSQL compiled to WebAssembly, in this process): in memory when `dataDir` is
 * undefined, else in that folder, which it holds through a lock file beside it (`<dataDir>.lock`, the
 * holder's pid) until close. Booting takes about two seconds.
 */
export async function openPglite(dataDir?: string, options: PgliteOptions = {}): Promise<Database> {
  const unlock = dataDir === undefined ? () => undefined : await lockDataDir(dataDir, options.lockWaitMs ?? 5000);
  let db: PGlite;
  try {
    db = await PGlite.create(dataDir);
  } catch (error) {
    unlock();
    throw error;
  }
  // PGlite runs one statement at a time; a transaction must not interleave with other queries,
  // so every call goes through one queue.
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(new Error("the PGlite store is closed"));
    const next = queue.then(fn, fn);
    queue = next.catch(() => undefined);
    return next;
  };
  return {
    kind: "pglite",
    query(sql, params = []) {
      return serial(async () => ({ rows: (await db.query(sql, params as unknown[])).rows as never[] }));
    },
    exec(script) {
      return serial(async () => {
        await db.exec(script);
      });
    },
    transaction(work) {
      return serial(() =>
        db.transaction(async (t) => {
          const tx: Queryable = {
            async query(sql, params = []) {
              return { rows: (await t.query(sql, params as unknown[])).rows as never[] };
            },
            async exec(script) {
              await t.exec(script);
            },
          };
          return work(tx);
        }),
      );
    },
    async close() {
      if (closed) return;
      closed = true;
      await queue.catch(() => undefined);
      try {
        await db.close();
      } finally {
        unlock();
      }
    },
  };
}

/**
 * Takes `<dataDir>.lock` (created exclusively, holding this pid), waiting up to `waitMs` for a live
 * holder to let go; a lock whose process is gone (a crash) is taken over. Returns the release.
 */
async function lockDataDir(dataDir: string, waitMs: number): Promise<() => void> {
  const lockFile = `${path.resolve(dataDir)}.lock`;
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      writeFileSync(lockFile, `${process.pid}\n`, { flag: "wx" });
      const release = () => {
        process.off("exit", release);
        if (holderOf(lockFile) === process.pid) rmSync(lockFile, { force: true });
      };
      // A process that exits without closing the store still frees the folder.
      process.on("exit", release);
      return release;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = holderOf(lockFile);
    if (holder === undefined || !isAlive(holder)) {
      rmSync(lockFile, { force: true });
      continue;
    }
    if (Date.now() >= deadline) throw new StoreInUseError(dataDir, holder, lockFile);
    await sleep(Math.min(200, Math.max(1, deadline - Date.now())));
  }
}

/** The pid in a lock file; undefined when it is gone or holds no pid. */
function holderOf(lockFile: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(lockFile, "utf8");
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

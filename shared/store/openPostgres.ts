import { Pool, type PoolConfig } from "pg";
import { DEFAULT_POSTGRES_POOL_MAX } from "../config";
import type { Database, Queryable } from "./Database";

export interface PostgresOptions {
  /** Maximum pool size: connections this pool opens at most (default DEFAULT_POSTGRES_POOL_MAX, 5; POSTGRES_POOL_MAX). */
  max?: number;
  /** Called for every new connection to supply the password (Entra access token in Azure). */
  password?: PoolConfig["password"];
}

/** Opens a pg pool on a connection string or a `PoolConfig` (host/database/user). */
export function openPostgres(connection: string | PoolConfig, options: PostgresOptions = {}): Database {
  const base: PoolConfig = typeof connection === "string" ? { connectionString: connection } : connection;
  const pool = new Pool({ ...base, max: options.max ?? DEFAULT_POSTGRES_POOL_MAX, ...(options.password ? { password: options.password } : {}) });
  // An idle client's error (server restart) must not crash the process: pg-pool drops that client and
  // the next query connects anew. Without this listener Node would exit on the 'error' event.
  pool.on("error", () => undefined);
  return {
    kind: "postgres",
    async query(sql, params = []) {
      // pool.query listens for the client's 'error' itself and destroys a broken client.
      const result = await pool.query(sql, params as unknown[]);
      return { rows: result.rows };
    },
    async exec(script) {
      // No values: pg sends the text as one simple-protocol Query message, which may hold several statements.
      await pool.query(script);
    },
    async transaction(work) {
      const client = await pool.connect();
      // A checked-out client has no pool listener: when the server drops between two statements of the
      // transaction, pg emits 'error' on the client, which must reject this call instead of killing the
      // process, and the client must be destroyed (release(error)), never handed out again.
      let broken: Error | undefined;
      const onError = (error: Error) => {
        broken ??= error;
      };
      client.on("error", onError);
      try {
        await client.query("BEGIN");
        const tx: Queryable = {
          async query(sql, params = []) {
            const result = await client.query(sql, params as unknown[]);
            return { rows: result.rows };
          },
          async exec(script) {
            await client.query(script);
          },
        };
        const value = await work(tx);
        await client.query("COMMIT");
        return value;
      } catch (error) {
        if (!broken) await client.query("ROLLBACK").catch((rollbackError: Error) => (broken ??= rollbackError));
        throw error;
      } finally {
        client.release(broken ?? false);
        client.removeListener("error", onError);
      }
    },
    async close() {
      await pool.end();
    },
  };
}


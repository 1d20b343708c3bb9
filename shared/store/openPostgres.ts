import { Pool, type PoolConfig } from "pg";
import type { Database, Queryable } from "./Database";

export interface PostgresOptions {
  /** Maximum pool size (default 10). */
  max?: number;
  /** Called for every new connection to supply the password (Entra access token in Azure). */
  password?: PoolConfig["password"];
}

/** Opens a pg pool on a connection string or a `PoolConfig` (host/database/user). */
export function openPostgres(connection: string | PoolConfig, options: PostgresOptions = {}): Database {
  const base: PoolConfig = typeof connection === "string" ? { connectionString: connection } : connection;
  const pool = new Pool({ ...base, max: options.max ?? 10, ...(options.password ? { password: options.password } : {}) });
  // An idle client's error (server restart) must not crash the process; the next query reconnects.
  pool.on("error", () => undefined);
  return {
    kind: "postgres",
    async query(sql, params = []) {
      const result = await pool.query(sql, params as unknown[]);
      return { rows: result.rows };
    },
    async transaction(work) {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const tx: Queryable = {
          async query(sql, params = []) {
            const result = await client.query(sql, params as unknown[]);
            return { rows: result.rows };
          },
        };
        const value = await work(tx);
        await client.query("COMMIT");
        return value;
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    async close() {
      await pool.end();
    },
  };
}

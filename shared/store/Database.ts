/**
 * The one SQL port the store uses, so the same SQL runs on PostgreSQL (`pg`) and on PGlite.
 * Parameters are always positional ($1…); JSON values are passed as JSON text and cast with ::jsonb
 * (pg would turn a JS array into a PostgreSQL array otherwise).
 */
export interface Queryable {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<{ rows: Row[] }>;
  /**
   * Runs a script: several statements in one string, no parameters, no rows (PostgreSQL's simple query
   * protocol; PGlite's `exec`). For migration files. The stores of openPostgres and openPglite and their
   * transactions have it; a wrapper need not (optional, so test doubles stay small).
   */
  exec?(script: string): Promise<void>;
}

export interface Database extends Queryable {
  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /** A client of its own for streaming reads (CSV): released by the caller. */
  close(): Promise<void>;
  readonly kind: "postgres" | "pglite";
}

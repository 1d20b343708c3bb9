import { z } from "zod";
import type { Database } from "./Database";

/**
 * Deletes every row of every twin whose device id starts with `prefix`, from each table of the
 * current schema that has a device_id column (so tables added later are covered too), in one
 * transaction: an interrupted reset leaves nothing half-forgotten. The report counters follow
 * through their triggers (a DELETE in a WITH clause fires them like any other). Returns the
 * number of devices rows deleted. The demo's reset (`npm start`): its emulator starts empty.
 */
export async function forgetTwins(db: Database, prefix: string): Promise<number> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query(
      "SELECT DISTINCT table_name FROM information_schema.columns WHERE column_name = 'device_id' AND table_schema = current_schema() ORDER BY table_name",
    );
    let devices = 0;
    for (const { table_name: table } of z.array(z.object({ table_name: z.string() })).parse(rows)) {
      // Names come from the catalog; quoted all the same.
      const result = await tx.query(
        `WITH gone AS (DELETE FROM "${table.replaceAll('"', '""')}" WHERE starts_with(device_id, $1) RETURNING 1) SELECT count(*) AS n FROM gone`,
        [prefix],
      );
      if (table === "devices") devices = z.coerce.number().parse(result.rows[0]?.["n"]);
    }
    return devices;
  });
}

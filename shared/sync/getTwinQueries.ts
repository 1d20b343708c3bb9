import type { Config } from "../config";
import { createTwinQueries } from "../hub/createTwinRegistry";
import type { TwinQueries } from "../hub/TwinRegistry";

let queries: { config: Config; value: TwinQueries | null } | undefined;

/**
 * The process's twin-query client, behind one query-quota limiter (HUB_QUERIES_PER_MINUTE) shared by
 * every function of the process (the sync timer and the resync timer continuing a pass), or null
 * when no hub is configured.
 */
export function getTwinQueries(config: Config): TwinQueries | null {
  if (queries?.config !== config) queries = { config, value: createTwinQueries(config) };
  return queries.value;
}

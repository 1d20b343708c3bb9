import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { parseTime } from "../../shared/events/decodeTwinChanges";
import { loadPolicyFile } from "../../shared/loadPolicy";
import { DEFAULT_POLICY, type Policy } from "../../shared/policy/Policy";
import type { Database } from "../../shared/store/Database";
import { openStore } from "../../shared/store/openStore";
import type { StoreConfig } from "../../shared/config";
import { redact } from "../../shared/redact";
import { formatReplayReport, replayFile } from "./replay";
import { formatSyncReport, runSyncCommand, SyncSetupError } from "./sync";
import { ConfigError, loadConfig } from "../../shared/config";
import { loadPolicy } from "../../shared/loadPolicy";

const USAGE = "usage: twin-reconciler replay FILE.jsonl [--policy FILE] [--db DIR|URL] [--now ISO] [--json] | twin-reconciler sync [--policy FILE] [--db DIR|URL] [--json]";

/** A problem with the arguments: printed as one line, exit code 2. */
class UsageError extends Error {}

/** The `twin-reconciler` command line. Resolves to the exit code. */
export async function main(argv: readonly string[], out: (text: string) => void = (t) => process.stdout.write(t), err: (text: string) => void = (t) => process.stderr.write(t)): Promise<number> {
  let db: Database | undefined;
  try {
    const { positionals, values } = parseArgsOrThrow(argv);
    const [command, file, ...extra] = positionals;
    if (command === "sync") {
      if (file !== undefined) throw new UsageError(`unexpected argument "${file}"; ${USAGE}`);
      let config;
      try {
        config = loadConfig(process.env);
      } catch (error) {
        if (error instanceof ConfigError) throw new UsageError(error.message);
        throw error;
      }
      if (config.hub.kind === "none") throw new UsageError("sync needs a hub: set IOTHUB_CONNECTION_STRING or IOTHUB_HOST_NAME");
      let syncPolicy: Policy;
      try {
        syncPolicy = values.policy !== undefined ? loadPolicyFile(values.policy) : loadPolicy(config.policy);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      db = values.db !== undefined ? await openDatabase(values.db) : await openStore(config);
      try {
        const report = await runSyncCommand({ db, policy: syncPolicy, config, progress: (line) => err(`${line}\n`) });
        out(values.json ? `${JSON.stringify(report)}\n` : `${formatSyncReport(report)}\n`);
      } catch (error) {
        if (error instanceof SyncSetupError) throw new UsageError(error.message);
        throw error;
      }
      return 0;
    }
    if (command !== "replay") throw new UsageError(command ? `unknown command "${command}"; ${USAGE}` : USAGE);
    if (!file) throw new UsageError(`replay needs a FILE.jsonl; ${USAGE}`);
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"; ${USAGE}`);
    if (!existsSync(file)) throw new UsageError(`no such file: ${file}`);
    let now: string | undefined;
    if (values.now !== undefined) {
      now = parseTime(values.now);
      if (!now) throw new UsageError(`--now must be an ISO-8601 time, got "${values.now}"`);
    }
    let policy: Policy = DEFAULT_POLICY;
    if (values.policy !== undefined) {
      try {
        policy = loadPolicyFile(values.policy);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
    }
    db = await openDatabase(values.db);
    const report = await replayFile(file, { db, policy, ...(now ? { now } : {}) });
    out(values.json ? `${JSON.stringify(report)}\n` : `${formatReplayReport(report)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      err(`twin-reconciler: ${redact(error.message)}\n`);
      return 2;
    }
    err(`twin-reconciler: ${redact((error as Error).message)}\n`);
    return 1;
  } finally {
    await db?.close().catch(() => undefined);
  }
}

function parseArgsOrThrow(argv: readonly string[]) {
  try {
    return parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: { policy: { type: "string" }, db: { type: "string" }, now: { type: "string" }, json: { type: "boolean", default: false } },
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}; ${USAGE}`);
  }
}

/** `--db`: a postgres:// URL, a PGlite folder, or (default) an in-memory PGlite; migrated by openStore. */
function openDatabase(target: string | undefined): Promise<Database> {
  const store: StoreConfig =
    target && /^postgres(ql)?:\/\//.test(target) ? { kind: "postgres", connectionString: target } : { kind: "pglite", dataDir: target ?? null };
  return openStore({ store });
}

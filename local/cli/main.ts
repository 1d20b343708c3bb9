import { existsSync, statSync } from "node:fs";
import { parseArgs } from "node:util";
import { parseTime } from "../../shared/events/decodeTwinChanges";
import { loadPolicyFile } from "../../shared/loadPolicy";
import { DEFAULT_POLICY, type Policy } from "../../shared/policy/Policy";
import type { Database } from "../../shared/store/Database";
import { openStore } from "../../shared/store/openStore";
import { ConfigError, loadConfig, type StoreConfig } from "../../shared/config";
import { redact } from "../../shared/redact";
import { StoreInUseError } from "../../shared/store/openPglite";
import { startupFailure, UsageError } from "../startupFailure";
import { formatReplayReport, replayFile } from "./replay";
import { repairReportCounters } from "../../shared/store/reportCounters";
import { loadPolicy } from "../../shared/loadPolicy";
import { formatRepair } from "./formatRepair";
import { formatSyncReport, runSyncCommand, SyncSetupError } from "./sync";
import { CAPTURE_HELP, parseCaptureArgs, runCapture } from "./capture";

const USAGE =
  "usage: twin-reconciler replay FILE.jsonl [--policy FILE] [--db DIR|URL] [--now ISO] [--json] | twin-reconciler sync [--policy FILE] [--db DIR|URL] [--json] | twin-reconciler repair-counters [--db DIR|URL] | twin-reconciler capture --help";

/** The `twin-reconciler` command line. Resolves to the exit code. */
export async function main(argv: readonly string[], out: (text: string) => void = (t) => process.stdout.write(t), err: (text: string) => void = (t) => process.stderr.write(t)): Promise<number> {
  let db: Database | undefined;
  try {
    // capture has options of its own (and a connection string among them): parsed apart, never echoed.
    if (argv[0] === "capture") {
      const request = parseCaptureArgs(argv.slice(1));
      if (request === "help") {
        out(`${CAPTURE_HELP}\n`);
        return 0;
      }
      // Ctrl-C (or SIGTERM) ends the capture cleanly, every received line written; a second one kills as usual.
      const interrupt = new AbortController();
      const onSignal = (): void => interrupt.abort();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      try {
        await runCapture(request, { out, err, signal: interrupt.signal });
      } finally {
        process.removeListener("SIGINT", onSignal);
        process.removeListener("SIGTERM", onSignal);
      }
      return 0;
    }
    const { positionals, values } = parseArgsOrThrow(argv);
    const [command, file, ...extra] = positionals;
    if (command === "repair-counters") {
      if (file !== undefined) throw new UsageError(`unexpected argument "${file}"; ${USAGE}`);
      db = await openStore(values.db === undefined ? loadConfig() : { store: storeFor(values.db) });
      out(formatRepair(await repairReportCounters(db)));
      return 0;
    }
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
      db = await openStore(values.db === undefined ? config : { store: storeFor(values.db) });
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
    if (!statSync(file).isFile()) throw new UsageError(`not a file: ${file}`);
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
    const store = storeFor(values.db);
    db = await openStore({ store });
    const report = await replayFile(file, { db, policy, ...(now ? { now } : {}) });
    out(values.json ? `${JSON.stringify(report)}\n` : `${formatReplayReport(report)}\n`);
    return 0;
  } catch (error) {
    const failure = startupFailure(error);
    // Past start-up a failure is the store's or the file's: its message is the line to print.
    const lines = failure.exitCode === 2 || error instanceof StoreInUseError ? failure.lines : [redact((error as Error).message)];
    for (const line of lines) err(`twin-reconciler: ${line}\n`);
    return failure.exitCode;
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

/**
 * `--db`: a postgres:// URL (checked as DATABASE_URL is), a PGlite folder, or (default) an in-memory
 * PGlite. What can never work is a usage error; a server that does not answer is not.
 */
function storeFor(target: string | undefined): StoreConfig {
  if (target === undefined) return { kind: "pglite", dataDir: null };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    try {
      const store = loadConfig({ DATABASE_URL: target }).store;
      if (store.kind === "postgres") return store;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
    }
    throw new UsageError("--db must be a postgres:// or postgresql:// URL or a folder for PGlite (value not shown: it may hold a password)");
  }
  if (existsSync(target) && !statSync(target).isDirectory()) throw new UsageError(`--db ${target} is a file; give a folder for PGlite or a postgres:// URL`);
  return { kind: "pglite", dataDir: target };
}

/**
 * Child-process entry of startHostProcess.ts: runs the local host on a free port with the function
 * modules and app settings given as JSON in HOST_PROCESS_MODULES and HOST_PROCESS_SETTINGS, prints
 * `{"url": …}` as one line on stdout once it serves, and stops on SIGTERM. Run with bin/run-ts.js.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startLocalHost } from "../../local/host/startLocalHost";
import { closeRuntime } from "../../shared/runtime";

async function main(): Promise<void> {
  const modules = JSON.parse(process.env.HOST_PROCESS_MODULES ?? "[]") as string[];
  const settings = JSON.parse(process.env.HOST_PROCESS_SETTINGS ?? "{}") as Record<string, string>;
  // No local.settings.json of the developer's: only the settings given.
  const rootDir = mkdtempSync(path.join(tmpdir(), "host-process-"));
  const host = await startLocalHost({
    modules,
    rootDir,
    settings,
    port: 0,
    scheduleTimers: false,
    log: (e) => {
      if (e.level === "error" || e.level === "critical" || e.level === "warning") process.stderr.write(`[${e.level}] ${e.functionName}: ${e.message}\n`);
    },
  });
  process.once("SIGTERM", () => {
    void host
      .stop()
      .then(() => closeRuntime())
      .finally(() => {
        rmSync(rootDir, { recursive: true, force: true });
        process.exit(0);
      });
  });
  process.stdout.write(`${JSON.stringify({ url: host.url })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`host process failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});

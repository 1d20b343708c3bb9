/**
 * The local host in a child process of its own, so a test or a benchmark measures the memory of
 * the process that serves (Linux: read from /proc, the peak reset through clear_refs).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";

const repoRoot = path.resolve(__dirname, "..", "..");

export interface HostProcess {
  /** `http://localhost:<port>/api` */
  readonly url: string;
  readonly pid: number;
  /** Resident set size now, in bytes. */
  rss(): number;
  /** Peak resident set size (VmHWM) since the start or the last resetPeak(), in bytes. */
  peakRss(): number;
  /** Starts a new peak from the current RSS (writes 5 to /proc/<pid>/clear_refs). */
  resetPeak(): void;
  /** What the process wrote to stderr so far. */
  stderr(): string;
  stop(): Promise<void>;
}

export async function startHostProcess(options: { modules: string[]; settings: Record<string, string> }): Promise<HostProcess> {
  const child = spawn(process.execPath, [path.join(repoRoot, "bin", "run-ts.js"), path.join(__dirname, "hostProcessMain.ts")], {
    cwd: repoRoot,
    env: { ...process.env, HOST_PROCESS_MODULES: JSON.stringify(options.modules), HOST_PROCESS_SETTINGS: JSON.stringify(options.settings) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-20_000)));
  const url = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once("line", (line) => {
      try {
        resolve((JSON.parse(line) as { url: string }).url);
      } catch {
        reject(new Error(`host process printed ${line} instead of its URL`));
      }
    });
    child.once("exit", (code) => reject(new Error(`host process exited (${code}) before serving: ${stderr}`)));
  });
  const pid = child.pid!;
  const status = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    if (!match?.[1]) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(match[1]) * 1024;
  };
  return {
    url,
    pid,
    rss: () => status("VmRSS"),
    peakRss: () => status("VmHWM"),
    resetPeak: () => writeFileSync(`/proc/${pid}/clear_refs`, "5"),
    stderr: () => stderr,
    stop: () => stopChild(child),
  };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(force);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

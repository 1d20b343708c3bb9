import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfig } from "../../shared/config";
import { openPglite, StoreInUseError } from "../../shared/store/openPglite";
import { openStore } from "../../shared/store/openStore";

// PGlite loads its file system with a dynamic import: run with `npm run jest` (--experimental-vm-modules).
describe("openStore", () => {
  const parent = mkdtempSync(path.join(tmpdir(), "openStore-"));
  afterAll(() => rmSync(parent, { recursive: true, force: true }));

  it("opens PGlite in the PGLITE_DATA_DIR folder, creating it, and applies every migration", async () => {
    const dataDir = path.join(parent, "nested", "pglite");
    const db = await openStore(loadConfig({ PGLITE_DATA_DIR: dataDir }));
    try {
      const { rows } = await db.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version");
      const migrations = readdirSync(path.join(__dirname, "..", "..", "shared", "store", "migrations")).filter((f) => /^\d{3}_.+\.sql$/.test(f));
      expect(rows.map((r) => r.version)).toEqual(migrations.map((f) => Number(f.slice(0, 3))).sort((a, b) => a - b));
      expect(db.kind).toBe("pglite");
    } finally {
      await db.close();
    }
    expect(readdirSync(dataDir).length).toBeGreaterThan(0);
  });
});

describe("a PGlite data folder in use", () => {
  const parent = mkdtempSync(path.join(tmpdir(), "pglite-lock-"));
  const repo = path.join(__dirname, "..", "..");
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill("SIGKILL");
    rmSync(parent, { recursive: true, force: true });
  });

  /** Another process (as a second npm start would be) that opens `dir` and keeps it open. */
  async function holdInAnotherProcess(dir: string): Promise<ChildProcess> {
    const script = `require(${JSON.stringify(path.join(repo, "local", "register"))});
      require(${JSON.stringify(path.join(repo, "shared", "store", "openPglite.ts"))}).openPglite(process.argv[1]).then(
        () => { process.stdout.write("open\\n"); setInterval(() => undefined, 1000); },
        (error) => { process.stderr.write(error.message); process.exit(3); });`;
    const holder = spawn(process.execPath, ["-e", script, dir], { stdio: ["ignore", "pipe", "pipe"] });
    await new Promise<void>((resolve, reject) => {
      holder.stdout!.on("data", (chunk: Buffer) => chunk.toString().includes("open") && resolve());
      holder.once("exit", (code) => reject(new Error(`the holder exited with ${code}`)));
    });
    return holder;
  }

  it("is refused naming the folder, the process holding it and what to do, instead of PGlite failing to initialize", async () => {
    const dir = path.join(parent, "shared");
    child = await holdInAnotherProcess(dir);
    const error = await openPglite(dir, { lockWaitMs: 0 }).then(
      (db) => db.close().then(() => undefined),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StoreInUseError);
    expect((error as Error).message).toBe(
      `the PGlite data folder ${dir} is in use by process ${child.pid}: stop that process (another npm start, or one still shutting down) ` +
        `or set PGLITE_DATA_DIR to another folder or to memory. If no such process runs, delete ${dir}.lock.`,
    );
  }, 60_000);

  it("waits for a holder that is shutting down, and takes over a lock its dead holder left behind", async () => {
    const dir = path.join(parent, "shared");
    const opening = openPglite(dir, { lockWaitMs: 30_000 });
    await new Promise((r) => setTimeout(r, 300));
    // SIGKILL: the holder cannot remove its lock file, so the lock left behind names a dead process.
    child!.kill("SIGKILL");
    await new Promise((r) => child!.once("exit", r));
    expect(readFileSync(`${dir}.lock`, "utf8").trim()).toBe(String(child!.pid));
    const db = await opening;
    try {
      expect(readFileSync(`${dir}.lock`, "utf8").trim()).toBe(String(process.pid));
      expect((await db.query<{ n: number }>("SELECT 1 AS n")).rows).toEqual([{ n: 1 }]);
    } finally {
      await db.close();
    }
    expect(existsSync(`${dir}.lock`)).toBe(false);
  }, 60_000);

  it("is refused within one process too, until the first store is closed", async () => {
    const dir = path.join(parent, "twice");
    const first = await openPglite(dir);
    await expect(openPglite(dir, { lockWaitMs: 0 })).rejects.toThrow(`is in use by process ${process.pid} (this process)`);
    await first.close();
    await (await openPglite(dir, { lockWaitMs: 0 })).close();
  }, 60_000);
});

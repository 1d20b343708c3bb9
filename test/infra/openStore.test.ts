import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfig } from "../../shared/config";
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

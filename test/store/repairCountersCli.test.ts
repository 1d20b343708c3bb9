/**
 * `twin-reconciler repair-counters`: recounts a store's report counters and names what was off.
 * The store is a PGlite folder (and PostgreSQL by URL when DATABASE_URL is set) with drift made by hand.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../local/cli/main";
import { openStore } from "../../shared/store/openStore";
import { counterDrift } from "../support/counterDrift";

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(args, (t) => (out += t), (t) => (err += t));
  return { code, out, err };
}

describe("twin-reconciler repair-counters", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "repair-counters-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("recounts a PGlite store's drifted counters, names each key that was off, and finds nothing the second time", async () => {
    const db = await openStore({ store: { kind: "pglite", dataDir: dir } });
    await db.query(
      "INSERT INTO devices (device_id, module_id, state, state_since, updated_at) VALUES ('d1', '', 'pending', now(), now()), ('d2', '', 'pending', now(), now())",
    );
    await db.query("INSERT INTO report_state_deltas (kind, path, state, n) VALUES ('device', '', 'pending', 40), ('record', 'interval', 'stale', 3)");
    await db.close();

    expect(await cli(["repair-counters", "--db", dir])).toEqual({
      code: 0,
      out: "report counters: repaired 2 keys\n  device pending: counted 42, actual 2\n  record interval stale: counted 3, actual 0\n",
      err: "",
    });
    expect(await cli(["repair-counters", "--db", dir])).toEqual({ code: 0, out: "report counters: equal to the tables, nothing to repair\n", err: "" });

    const after = await openStore({ store: { kind: "pglite", dataDir: dir } });
    try {
      expect(await counterDrift(after)).toEqual([]);
    } finally {
      await after.close();
    }
  });

  it("refuses an extra argument with exit code 2", async () => {
    const { code, err } = await cli(["repair-counters", "now", "--db", dir]);
    expect(code).toBe(2);
    expect(err).toMatch(/^twin-reconciler: unexpected argument "now"/);
  });
});

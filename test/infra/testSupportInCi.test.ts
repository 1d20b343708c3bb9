import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { postgresBinDir, privatePostgresMode } from "../support/privatePostgres";

describe("test support in CI", () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it("fails the store suites when CI=true and DATABASE_URL is unset, instead of dropping their PostgreSQL half", () => {
    process.env.CI = "true";
    delete process.env.DATABASE_URL;
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a fresh module evaluation under this environment
    expect(() => jest.isolateModules(() => require("../support/testDatabases"))).toThrow(/CI=true but DATABASE_URL is not set/);
  });

  it("runs the store suites on PGlite only outside CI when DATABASE_URL is unset, saying so", () => {
    delete process.env.CI;
    delete process.env.DATABASE_URL;
    const warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
    let names: string[] = [];
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a fresh module evaluation under this environment
      names = (require("../support/testDatabases") as { testDatabases: { name: string }[] }).testDatabases.map((t) => t.name);
    });
    expect(names).toEqual(["pglite"]);
    expect(warn).toHaveBeenCalledWith(expect.stringMatching(/PostgreSQL skipped/));
    warn.mockRestore();
  });

  it("fails the private-server outage suite in CI without PostgreSQL binaries, skips it elsewhere", () => {
    const empty = mkdtempSync(join(tmpdir(), "no-postgres-"));
    expect(postgresBinDir(empty)).toBeUndefined();
    expect(postgresBinDir(join(empty, "missing"))).toBeUndefined();
    expect(privatePostgresMode(undefined, { CI: "true" })).toBe("fail");
    expect(privatePostgresMode(undefined, {})).toBe("skip");
    expect(privatePostgresMode("/usr/lib/postgresql/15/bin", { CI: "true" })).toBe("run");
  });
});

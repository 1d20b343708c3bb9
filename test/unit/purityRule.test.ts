import { ESLint } from "eslint";
import { join } from "node:path";

// The architecture rule (eslint.config.mjs): the pure core imports no I/O, so a refactor that
// slips `pg` or `node:fs` into shared/compliance fails `npm test`, not a code review.
describe("the pure-core import rule", () => {
  const eslint = new ESLint({ cwd: join(__dirname, "..", "..") });
  const lint = async (file: string, code: string) => (await eslint.lintText(code, { filePath: join(__dirname, "..", "..", file) }))[0]!.messages.map((m) => m.ruleId);

  test.each([
    ["shared/compliance/x.ts", 'import { Pool } from "pg";\nexport const p = Pool;\n'],
    ["shared/twin/x.ts", 'import { readFileSync } from "node:fs";\nexport const r = readFileSync;\n'],
    ["shared/policy/x.ts", 'import { Registry } from "azure-iothub";\nexport const r = Registry;\n'],
    ["shared/events/x.ts", 'import { openStore } from "../store/openStore";\nexport const o = openStore;\n'],
    ["shared/compliance/x.ts", 'import { metrics } from "@opentelemetry/api";\nexport const m = metrics;\n'],
  ])("rejects an I/O import in %s", async (file, code) => {
    expect(await lint(file, code)).toContain("no-restricted-imports");
  });

  test("allows the same import outside the pure folders", async () => {
    expect(await lint("shared/store/x.ts", 'import { Pool } from "pg";\nexport const p = Pool;\n')).not.toContain("no-restricted-imports");
  });
});

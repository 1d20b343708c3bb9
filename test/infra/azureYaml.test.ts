/**
 * azure.yaml is valid against azd's published schema (vendored: test/infra/schemas/README.md says
 * from where) and deploys what the Bicep provisions; the package azd uploads is staged by
 * scripts/stage-package.js from .funcignore's rules, without dev dependencies.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Ajv2019 from "ajv/dist/2019";
import { parse } from "yaml";
import { readBicep } from "./bicepText";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const stager = require("../../scripts/stage-package.js") as {
  parseIgnore: (text: string) => unknown[];
  isIgnored: (rules: unknown[], relPath: string, isDir: boolean) => boolean;
  stagedFiles: (root: string) => string[];
  stage: (root: string, options: { install?: boolean; build?: boolean }) => string[];
  STAGE: string;
};

const root = path.join(__dirname, "..", "..");
const azureYaml = parse(readFileSync(path.join(root, "azure.yaml"), "utf8")) as Record<string, unknown>;
const schema = JSON.parse(readFileSync(path.join(__dirname, "schemas", "azure.yaml.json"), "utf8")) as Record<string, unknown>;

function validator() {
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  // The schema $refs azd extensions' schemas only under `if host == azure.ai.* / microsoft.foundry`;
  // none of our services has such a host (asserted below), so they stand in as empty schemas.
  const external = [...JSON.stringify(schema).matchAll(/"\$ref":"(https:[^"]+)"/g)].map((m) => m[1] ?? "");
  for (const id of new Set(external)) ajv.addSchema({ $id: id }, id);
  return ajv.compile(schema);
}

interface Hook {
  shell: string;
  run: string;
}
interface Service {
  project: string;
  language: string;
  host: string;
  dist: string;
  remoteBuild: boolean;
  hooks: Record<string, { posix: Hook; windows: Hook }>;
}

describe("azure.yaml", () => {
  const validate = validator();

  it("is valid against azd's schema", () => {
    const valid = validate(azureYaml);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  });

  it("the schema check has teeth: a misspelt hook or a nameless project is refused", () => {
    const services = azureYaml["services"] as Record<string, Service>;
    const typo = { ...azureYaml, services: { api: { ...services["api"], hooks: { prepackge: services["api"]?.hooks["prepackage"] } } } };
    expect(validate(typo)).toBe(false);
    const { name: _name, ...nameless } = azureYaml;
    expect(validate(nameless)).toBe(false);
  });

  it("deploys one service, `api`: a TypeScript Function App from the project root, packaged locally from the stage", () => {
    const services = azureYaml["services"] as Record<string, Service>;
    expect(Object.keys(services)).toEqual(["api"]);
    expect(services["api"]).toMatchObject({ project: ".", language: "ts", host: "function", dist: stager.STAGE, remoteBuild: false });
    const prepackage = services["api"]?.hooks["prepackage"];
    expect(prepackage?.posix.run).toBe("node scripts/stage-package.js");
    expect(prepackage?.windows.run).toBe("node scripts/stage-package.js");
  });

  it("runs hook scripts that exist", () => {
    const hooks = [
      ...Object.values((azureYaml["hooks"] ?? {}) as Record<string, { posix: Hook; windows: Hook }>),
      ...Object.values((azureYaml["services"] as Record<string, Service>)["api"]?.hooks ?? {}),
    ];
    expect(hooks.length).toBeGreaterThan(0);
    for (const hook of hooks) {
      for (const run of [hook.posix.run, hook.windows.run]) {
        const script = run.split(" ").find((word) => /^(scripts|local\/cli)\/.+\.(js|ts)$/.test(word));
        expect({ run, exists: script !== undefined && existsSync(path.join(root, script)) }).toEqual({ run, exists: true });
      }
    }
  });

  it("finds the Function App by the tag the Bicep gives it, and provisions infra/main.bicep", () => {
    expect(azureYaml["infra"]).toEqual({ provider: "bicep", path: "infra", module: "main" });
    expect(readBicep("main.bicep")).toMatch(/azdServiceName: 'api'/);
    expect(readBicep(path.join("modules", "functionApp.bicep"))).toMatch(/tags: union\(tags, \{ 'azd-service-name': azdServiceName \}\)/);
  });

  it("fills main.parameters.json only from azd's own variables, the preprovision hook's, and ones the README documents", () => {
    const text = readFileSync(path.join(root, "infra", "main.parameters.json"), "utf8");
    const readme = readFileSync(path.join(root, "README.md"), "utf8");
    const azdBuiltIn = ["AZURE_ENV_NAME", "AZURE_LOCATION", "AZURE_PRINCIPAL_ID"];
    const preprovision = readFileSync(path.join(root, "scripts", "azd-preprovision.js"), "utf8");
    const variables = [...text.matchAll(/\$\{([A-Z_]+)(=[^}]*)?\}/g)].map((m) => m[1] ?? "");
    expect(variables.length).toBeGreaterThan(0);
    for (const name of variables) {
      const known = azdBuiltIn.includes(name) || preprovision.includes(`"${name}"`) || readme.includes(name);
      expect({ name, known }).toEqual({ name, known: true });
    }
  });

  it("keeps the stage and azd's state out of git and out of a func publish", () => {
    expect(readFileSync(path.join(root, ".gitignore"), "utf8").split("\n")).toEqual(expect.arrayContaining([".azd-package/", ".azure/"]));
    expect(readFileSync(path.join(root, ".funcignore"), "utf8").split("\n")).toEqual(expect.arrayContaining(["/.azd-package/", "/.azure/", "azure.yaml"]));
  });
});

describe("scripts/azd-preprovision.js", () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { environmentProblems } = require("../../scripts/azd-preprovision.js") as { environmentProblems: (env: Record<string, string>) => string[] };

  it("stops before provisioning when the database setup could not reach the private server", () => {
    const problems = environmentProblems({});
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/the private server has no public access: azd env set POSTGRES_ALLOWED_IPS/);
  });

  it("goes ahead with an allowed address, or when the setup is skipped", () => {
    expect(environmentProblems({ POSTGRES_ALLOWED_IPS: '["203.0.113.7"]' })).toEqual([]);
    expect(environmentProblems({ POSTGRES_NETWORK: "allowList", POSTGRES_ALLOWED_IPS: '["203.0.113.0-203.0.113.255"]' })).toEqual([]);
    expect(environmentProblems({ SKIP_POSTGRES_SETUP: "true" })).toEqual([]);
  });

  it("names a malformed network or address list", () => {
    expect(environmentProblems({ POSTGRES_NETWORK: "public", SKIP_POSTGRES_SETUP: "true" })).toEqual([expect.stringMatching(/^POSTGRES_NETWORK must be privateEndpoint or allowList/)]);
    expect(environmentProblems({ POSTGRES_ALLOWED_IPS: "203.0.113.7", SKIP_POSTGRES_SETUP: "true" })).toEqual([expect.stringMatching(/^POSTGRES_ALLOWED_IPS must be a JSON array/)]);
  });
});

describe("scripts/stage-package.js", () => {
  const rules = stager.parseIgnore(readFileSync(path.join(root, ".funcignore"), "utf8"));

  // Hand-written: what .funcignore means for these paths (gitignore semantics).
  it.each([
    ["dist/functions/reconcileTwinChanges.js", false, false],
    ["dist/shared/store/migrations/001_initial.sql", false, false],
    ["host.json", false, false],
    ["package.json", false, false],
    ["package-lock.json", false, false],
    ["local/dashboard", true, false],
    ["local/dashboard/index.html", false, false],
    ["functions/reconcileTwinChanges.ts", false, true],
    ["shared/store/migrations/001_initial.sql", false, false],
    ["dist/functions/reconcileTwinChanges.js.map", false, true],
    ["dist/local", true, true],
    ["local/host", true, true],
    ["test", true, true],
    ["shared/test", true, false],
    ["infra", true, true],
    ["scripts", true, true],
    ["local.settings.json", false, true],
    ["local.settings.azure.json.example", false, true],
    ["azure.yaml", false, true],
    ["tsconfig.build.json", false, true],
    [".env.production", false, true],
    ["debug.log", false, true],
  ])("%s (directory: %s) ignored: %s", (relPath, isDir, ignored) => {
    expect(stager.isIgnored(rules, relPath, isDir)).toBe(ignored);
  });

  it("refuses a negated pattern instead of misreading it", () => {
    expect(() => stager.parseIgnore("*.ts\n!keep.ts\n")).toThrow(/negated pattern "!keep\.ts" is not supported/);
  });

  it("stages the kept files of a project, never its node_modules or azd state", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "stage-"));
    try {
      writeFileSync(path.join(dir, ".funcignore"), readFileSync(path.join(root, ".funcignore")));
      const files = [
        "host.json",
        "package.json",
        "package-lock.json",
        "dist/functions/a.js",
        "dist/functions/a.js.map",
        "dist/local/host.js",
        "dist/shared/store/migrations/001_initial.sql",
        "functions/a.ts",
        "local/dashboard/index.html",
        "local/host/x.ts",
        "node_modules/pg/index.js",
        ".azure/dev/.env",
        "test/a.test.ts",
        "infra/main.bicep",
        "local.settings.json",
      ];
      for (const file of files) {
        mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        writeFileSync(path.join(dir, file), file);
      }
      const expected = [
        "dist/functions/a.js",
        "dist/shared/store/migrations/001_initial.sql",
        "host.json",
        "local/dashboard/index.html",
        "package-lock.json",
        "package.json",
      ];
      expect(stager.stagedFiles(dir)).toEqual(expected);
      expect(stager.stage(dir, { install: false, build: false })).toEqual(expected);
      for (const file of expected) expect(readFileSync(path.join(dir, stager.STAGE, file), "utf8")).toBe(file);
      expect(existsSync(path.join(dir, stager.STAGE, "node_modules"))).toBe(false);
      // A second run starts from an empty stage.
      rmSync(path.join(dir, "local", "dashboard"), { recursive: true });
      expect(stager.stage(dir, { install: false, build: false })).not.toContain("local/dashboard/index.html");
      expect(existsSync(path.join(dir, stager.STAGE, "local", "dashboard", "index.html"))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

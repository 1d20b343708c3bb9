/**
 * What `npm run build && func azure functionapp publish <app>` deploys: host.json, the compiled
 * function files that package.json "main" points at, and what .funcignore leaves out.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { loadConfig, settingNames } from "../../shared/config";

const root = path.join(__dirname, "..", "..");
const readJson = <T>(file: string): T => JSON.parse(readFileSync(path.join(root, file), "utf8")) as T;

describe("host.json", () => {
  const host = readJson<Record<string, unknown>>("host.json");

  it("uses the v4 extension bundle with Event Hubs batches sized for this workload", () => {
    expect(host).toMatchObject({
      version: "2.0",
      extensionBundle: { id: "Microsoft.Azure.Functions.ExtensionBundle", version: "[4.*, 5.0.0)" },
      extensions: { eventHubs: { maxEventBatchSize: 100, prefetchCount: 300, batchCheckpointFrequency: 1 } },
    });
  });

  it("logs functions at Information, the rest at Warning, with sampling on", () => {
    expect(host).toMatchObject({
      logging: {
        logLevel: { default: "Warning", Function: "Information" },
        applicationInsights: { samplingSettings: { isEnabled: true } },
      },
    });
  });
});

describe("package layout", () => {
  it("compiles functions/*.ts to the dist/functions/*.js that package.json main points at", () => {
    expect(readJson<{ main: string }>("package.json").main).toBe("dist/functions/*.js");
    const build = readJson<{ extends: string; include: string[] }>("tsconfig.build.json");
    const base = readJson<{ compilerOptions: { rootDir: string; outDir: string } }>(build.extends);
    expect(base.compilerOptions).toMatchObject({ rootDir: ".", outDir: "dist" });
    expect(build.include).toContain("functions/**/*.ts");
  });

  const ignored = readFileSync(path.join(root, ".funcignore"), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));

  it(".funcignore leaves out sources, tests, tools, infra, local state and secrets", () => {
    expect(ignored).toEqual(
      expect.arrayContaining(["*.ts", "*.js.map", "/test/", "/bench/", "/local/emulator/", "/local/fleet/", "/local/host/", "/dist/local/", "/infra/", "/scripts/", "/.data/", "local.settings.json"]),
    );
  });

  it(".funcignore keeps local/dashboard/, whose assets the dashboard route serves from the package", () => {
    expect(ignored.filter((pattern) => /^\/?local\/?$|^\/?local\/\*|dashboard/.test(pattern))).toEqual([]);
  });

  it(".funcignore keeps dist/, node_modules/, host.json, package.json and the SQL migrations", () => {
    const keeps = /^\/?(dist|node_modules)\/?$|^\*\.js$|^\*\.json$|^host\.json$|^package\.json$|\.sql$|^\/?shared\/?$/;
    expect(ignored.filter((pattern) => keeps.test(pattern))).toEqual([]);
  });
});

describe("production dependencies", () => {
  const pkg = readJson<{ dependencies: Record<string, string>; devDependencies: Record<string, string> }>("package.json");

  it("leave out what only the embedded local default uses (PGlite, the emulator's AMQP server)", () => {
    for (const name of ["@electric-sql/pglite", "rhea", "azure-iot-http-base"]) {
      expect(pkg.dependencies).not.toHaveProperty([name]);
      expect(pkg.devDependencies).toHaveProperty([name]);
    }
  });

  it("suffice for the functions on an Azure instance: none loads PGlite, and the store refuses it there", () => {
    // A fresh node process where @electric-sql/pglite cannot be resolved (as in the Azure package)
    // loads every function module, then opens the default (PGlite) store as an Azure instance would.
    const functions = readdirSync(path.join(root, "functions")).filter((f) => f.endsWith(".ts"));
    const script = `
      const Module = require("node:module");
      const resolve = Module._resolveFilename;
      Module._resolveFilename = function (request, ...rest) {
        if (request.startsWith("@electric-sql/pglite")) throw Object.assign(new Error("no PGlite in this package"), { code: "MODULE_NOT_FOUND" });
        return resolve.call(this, request, ...rest);
      };
      require("./local/register.js");
      for (const f of ${JSON.stringify(functions)}) require("./functions/" + f);
      const { openStore } = require("./shared/store/openStore");
      const { loadConfig } = require("./shared/config");
      openStore(loadConfig({}), { env: { WEBSITE_INSTANCE_ID: "i1" } }).then(
        () => console.log("OPENED"),
        (e) => console.log("REFUSED " + e.message),
      );`;
    const run = spawnSync(process.execPath, ["-e", script], { cwd: root, encoding: "utf8", timeout: 60_000 });
    expect(run.stderr).not.toMatch(/PGlite|pglite/);
    expect(run.stdout).toMatch(/^REFUSED [\s\S]*POSTGRES_HOST[\s\S]*never used in Azure/m);
  });
});

describe("local.settings.json.example", () => {
  const values = readJson<{ Values: Record<string, string> }>("local.settings.json.example").Values;

  it("is a valid configuration (the local defaults)", () => {
    expect(loadConfig(values).store).toEqual({ kind: "pglite", dataDir: ".data/pglite" });
  });

  it("sets only settings the app or the Functions host reads", () => {
    const host = (name: string) => ["FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage", "TwinEvents"].includes(name);
    expect(Object.keys(values).filter((name) => !settingNames.includes(name) && !host(name))).toEqual([]);
  });

  it("holds no secret: the only key is the Event Hubs emulator's documented placeholder", () => {
    const keys = Object.values(values).flatMap((v) => [...v.matchAll(/(?:SharedAccessKey|AccountKey|password)=([^;]*)/gi)].map((m) => m[1]));
    expect(keys).toEqual(["SAS_KEY_VALUE"]);
  });
});

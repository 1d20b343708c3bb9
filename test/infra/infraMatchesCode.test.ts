/**
 * infra/main.bicep and the code agree on app settings.
 *
 * How main.bicep is read (text, no Bicep compiler here — see bicepText.ts for the general rules):
 *   - the Function App's settings are the entries of the one `appSettings: [` array in main.bicep
 *     (passed to modules/functionApp.bicep, whose siteConfig uses that param and nothing else);
 *   - each entry is written `{ name: '<literal>', value: … }` — no computed names, no concat() or
 *     conditional entries (the test fails if an entry has no literal name);
 *   - the host's own settings are recognised by prefix: AzureWebJobsStorage__, APPLICATIONINSIGHTS_,
 *     TwinEvents__ (the trigger's identity-based connection) and FUNCTIONS_ (none on Flex Consumption).
 * Bindings are read by loading functions/*.ts with the @azure/functions-core stand-in
 * (local/host/functionsCore.js, mapped in jest.config.js), which records each registration.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { localOnlySettingNames, settingNames } from "../../shared/config";
import { appSettingNames, code, readBicep } from "./bicepText";

const root = path.join(__dirname, "..", "..");
const HOST_PREFIXES = ["AzureWebJobsStorage__", "APPLICATIONINSIGHTS_", "TwinEvents__", "FUNCTIONS_"];
const isHostSetting = (name: string) => HOST_PREFIXES.some((prefix) => name.startsWith(prefix));

const main = readBicep("main.bicep");
const { names: bicepSettings, entries } = appSettingNames(main);
const localSettings = Object.keys(
  (JSON.parse(readFileSync(path.join(root, "local.settings.json.example"), "utf8")) as { Values: Record<string, string> }).Values,
);

describe("infra/main.bicep app settings", () => {
  it("names every entry with a literal, once", () => {
    expect(bicepSettings.length).toBe(entries);
    expect(new Set(bicepSettings).size).toBe(bicepSettings.length);
  });

  it("are exactly the settings the config schema reads (minus local-only) plus the host's own", () => {
    const expected = settingNames.filter((name) => !localOnlySettingNames.includes(name)).sort();
    expect(bicepSettings.filter((name) => !isHostSetting(name)).sort()).toEqual(expected);
  });

  it("never set a local-only setting (connection strings, emulator, PGlite)", () => {
    expect(bicepSettings.filter((name) => localOnlySettingNames.includes(name))).toEqual([]);
  });

  it("connect the host's storage, Application Insights and the trigger with the user-assigned identity", () => {
    expect(bicepSettings).toEqual(
      expect.arrayContaining([
        "AzureWebJobsStorage__accountName",
        "AzureWebJobsStorage__credential",
        "AzureWebJobsStorage__clientId",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
        "TwinEvents__fullyQualifiedNamespace",
        "TwinEvents__credential",
        "TwinEvents__clientId",
      ]),
    );
    expect(bicepSettings).not.toContain("AzureWebJobsStorage");
    expect(main).toMatch(/name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'Authorization=AAD;ClientId=\$\{appIdentity\.outputs\.clientId\}'/);
  });

  it("reach the Function App through its siteConfig and nothing else", () => {
    const site = code(readBicep(path.join("modules", "functionApp.bicep")));
    expect(site.match(/appSettings\s*:/g)).toHaveLength(1);
    expect(site).toMatch(/siteConfig: \{[^}]*appSettings: appSettings/);
  });
});

// Functions written so far (others may still be on their way): whatever exists is checked.
const functionFiles = readdirSync(path.join(root, "functions")).filter((f) => f.endsWith(".ts"));

interface Registered {
  metadata: { name: string; bindings: Record<string, Record<string, unknown>> };
}

async function registeredFunctions(): Promise<Registered[]> {
  for (const file of functionFiles) await import(path.join(root, "functions", file));
  // The worker-provided module has no types on npm: jest maps this name to the stand-in.
  const coreModule = "@azure/functions-core";
  const core = (await import(coreModule)) as { __state: { functions: Map<string, Registered> } };
  return [...core.__state.functions.values()];
}

interface BindingReference {
  fn: string;
  kind: "setting" | "connection";
  name: string;
}

(functionFiles.length > 0 ? describe : describe.skip)(`function bindings (${functionFiles.join(", ") || "none yet"})`, () => {
  let functions: Registered[] = [];
  let references: BindingReference[] = [];
  beforeAll(async () => {
    functions = await registeredFunctions();
    references = functions.flatMap((f) =>
      Object.values(f.metadata.bindings).flatMap((binding): BindingReference[] => [
        ...Object.values(binding)
          .filter((v): v is string => typeof v === "string")
          .flatMap((v) => [...v.matchAll(/%([^%]+)%/g)].map((m): BindingReference => ({ fn: f.metadata.name, kind: "setting", name: m[1] ?? "" }))),
        ...(typeof binding["connection"] === "string" ? [{ fn: f.metadata.name, kind: "connection" as const, name: binding["connection"] }] : []),
      ]),
    );
  });

  it("registers at least one function per file", () => {
    expect(functions.length).toBeGreaterThanOrEqual(functionFiles.length);
  });

  it("every %SETTING% a binding uses is set by main.bicep and local.settings.json.example", () => {
    const settings = references.filter((r) => r.kind === "setting");
    expect(settings.length).toBeGreaterThan(0);
    expect(settings.filter((r) => !bicepSettings.includes(r.name))).toEqual([]);
    expect(settings.filter((r) => !localSettings.includes(r.name))).toEqual([]);
  });

  it("every binding connection is set by main.bicep as an identity-based connection, and locally", () => {
    for (const ref of references.filter((r) => r.kind === "connection")) {
      expect({ ...ref, bicep: ["fullyQualifiedNamespace", "credential", "clientId"].filter((s) => !bicepSettings.includes(`${ref.name}__${s}`)) }).toEqual({ ...ref, bicep: [] });
      expect({ ...ref, local: localSettings.includes(ref.name) }).toEqual({ ...ref, local: true });
    }
  });
});

/**
 * Structural checks of infra/*.bicep. They are NOT a compile: no Bicep CLI can be installed here
 * (`npm run infra:build` compiles where one is). See bicepText.ts for the text assumptions.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { bicepFiles, bracketProblem, code, infraDir, modules, params, readBicep } from "./bicepText";

const files = bicepFiles();

/** Built-in role definition IDs used in infra/, with their names (learn.microsoft.com built-in roles). */
const BUILT_IN_ROLES: Record<string, string> = {
  "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
  "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
  "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
  "a638d3c7-ab3a-418d-83e6-5f17a39d4fde": "Azure Event Hubs Data Receiver",
  "2b629674-e913-4c01-ae53-ef4638d8f975": "Azure Event Hubs Data Sender",
  "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
  "494bdba2-168f-4f31-a0a1-191d2f7c028c": "IoT Hub Twin Contributor",
  "4ea46cd5-c1b2-4a8e-910b-273211f9ce47": "IoT Hub Registry Contributor",
};

describe("infra/*.bicep structure", () => {
  it("finds main.bicep and its modules", () => {
    expect(files).toContain("main.bicep");
    expect(files.some((f) => f.startsWith(`modules${path.sep}`))).toBe(true);
  });

  it.each(files)("%s has balanced braces, brackets and parentheses", (file) => {
    expect(bracketProblem(readBicep(file))).toBeNull();
  });

  it.each(files)("%s uses every param it declares", (file) => {
    const src = code(readBicep(file));
    const unused = params(src).filter((p) => (src.match(new RegExp(`\\b${p.name}\\b`, "g")) ?? []).length < 2);
    expect(unused.map((p) => p.name)).toEqual([]);
  });

  it.each(files)("%s refers only to module files that exist, and pins registry module versions", (file) => {
    for (const use of modules(readBicep(file))) {
      if (use.path.startsWith("br/public:")) expect(use.path).toMatch(/^br\/public:avm\/res\/[a-z0-9/-]+:\d+\.\d+\.\d+$/);
      else expect(existsSync(path.join(infraDir, path.dirname(file), use.path))).toBe(true);
    }
  });

  it.each(files)("%s passes each local module exactly the params it declares (all required ones included)", (file) => {
    for (const use of modules(readBicep(file)).filter((m) => !m.path.startsWith("br/"))) {
      const declared = params(readFileSync(path.join(infraDir, path.dirname(file), use.path), "utf8"));
      const unknown = use.paramKeys.filter((k) => !declared.some((p) => p.name === k));
      const missing = declared.filter((p) => !p.hasDefault && !use.paramKeys.includes(p.name)).map((p) => p.name);
      expect({ module: use.symbol, unknown, missing }).toEqual({ module: use.symbol, unknown: [], missing: [] });
    }
  });

  it.each(files)("%s holds no keys, connection strings or passwords", (file) => {
    const lines = readBicep(file).split("\n");
    const offending = lines.filter(
      (line) =>
        /listKeys\(|listConnectionStrings\(|listAuthKeys\(|SharedAccessKey|AccountKey=|primaryKey|secondaryKey|administratorLoginPassword|@secure\(\)/i.test(line) ||
        // The one connection string allowed is Application Insights': it names the resource and carries
        // no secret (its local auth is disabled; telemetry is sent with the app's identity).
        (/connectionString/i.test(line) && !/name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: appInsights\.outputs\.connectionString \}/.test(line)),
    );
    expect(offending).toEqual([]);
  });

  it.each(files)("%s comments every role definition GUID with that role's name", (file) => {
    for (const line of readBicep(file).split("\n")) {
      const guid = /'([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'/i.exec(line)?.[1];
      if (!guid) continue;
      const role = BUILT_IN_ROLES[guid.toLowerCase()];
      expect({ guid, role }).toEqual({ guid, role: expect.any(String) });
      expect(line).toContain(`// ${role}`);
    }
  });

  it("assigns exactly the intended built-in roles, and no broad ones (Owner, Contributor, IoT Hub Data Contributor)", () => {
    const roleNames = files.flatMap((file) =>
      [...readBicep(file).matchAll(/'([0-9a-f-]{36})' \/\/ (.+)$/gm)].map((m) => m[2]?.trim()),
    );
    expect(new Set(roleNames)).toEqual(new Set(Object.values(BUILT_IN_ROLES)));
    // No broad roles anywhere.
    const everything = files.map(readBicep).join("\n");
    expect(everything).not.toMatch(/b24988ac-6180-42a0-ab88-20f7382dd24c|8e3af657-a8ff-443c-a75c-2fe8c4bcb635|4fc6c259-987e-4a07-842e-c321cc9d413f/);
  });

  it("main.parameters.json sets only main.bicep's params, and every required one", () => {
    const declared = params(readBicep("main.bicep"));
    const file = JSON.parse(readFileSync(path.join(infraDir, "main.parameters.json"), "utf8")) as { parameters: Record<string, unknown> };
    const given = Object.keys(file.parameters);
    expect(given.filter((name) => !declared.some((p) => p.name === name))).toEqual([]);
    expect(declared.filter((p) => !p.hasDefault && !given.includes(p.name)).map((p) => p.name)).toEqual([]);
  });

  it("routes TwinChangeEvents and DeviceLifecycleEvents to the event hub with an identity and keeps the fallback route", () => {
    const hub = readBicep(path.join("modules", "iotHub.bicep"));
    expect(hub).toMatch(/source: 'TwinChangeEvents'/);
    expect(hub).toMatch(/source: 'DeviceLifecycleEvents'\s+condition: 'true'\s+endpointNames: \[\s+twinChangesEndpointName/);
    expect(hub).toMatch(/authenticationType: 'identityBased'/);
    expect(hub).toMatch(/fallbackRoute: \{[^}]*isEnabled: true/);
  });

  it("disables password auth on PostgreSQL and shared keys on storage and Event Hubs", () => {
    expect(readBicep(path.join("modules", "postgres.bicep"))).toMatch(/passwordAuth: 'Disabled'/);
    expect(readBicep("main.bicep")).toMatch(/allowSharedKeyAccess: false/);
    expect(readBicep(path.join("modules", "eventHubs.bicep"))).toMatch(/disableLocalAuth: true/);
  });
});

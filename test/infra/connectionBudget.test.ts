/**
 * The PostgreSQL connection budget: at full scale-out the app opens maximumInstanceCount ×
 * postgresPoolMax connections (one pool per instance, POSTGRES_POOL_MAX), which with the connections
 * kept spare must fit the server's user connections. Checked here for the Bicep defaults and for
 * main.parameters.json against Microsoft's published limits (hand-copied below, not read from the
 * Bicep), and the Bicep's own deployment-time guard is checked to be wired to the app setting.
 * Text-level (no Bicep CLI here): see bicepText.ts.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { code, readBicep } from "./bicepText";

/**
 * "Maximum connections" of Azure Database for PostgreSQL flexible server
 * (https://learn.microsoft.com/azure/postgresql/flexible-server/concepts-limits): the default
 * max_connections per compute SKU, of which the service reserves 15 for replication and monitoring
 * ("Max user connections" = max connections − 15; B1ms: 50 and 35).
 */
const DOCUMENTED_MAX_CONNECTIONS: Record<string, number> = {
  Standard_B1ms: 50,
  Standard_B2s: 429,
  Standard_B2ms: 859,
  Standard_B4ms: 1718,
  Standard_B8ms: 3437,
  Standard_B12ms: 5000,
  Standard_B16ms: 5000,
  Standard_B20ms: 5000,
  Standard_D2s_v3: 859,
  Standard_D2ds_v4: 859,
  Standard_D2ds_v5: 859,
  Standard_D2ads_v5: 859,
  Standard_D4s_v3: 1718,
  Standard_D4ds_v4: 1718,
  Standard_D4ds_v5: 1718,
  Standard_D4ads_v5: 1718,
  Standard_D8s_v3: 3437,
  Standard_D8ds_v4: 3437,
  Standard_D8ds_v5: 3437,
  Standard_D8ads_v5: 3437,
  Standard_E2s_v3: 1718,
  Standard_E2ds_v4: 1718,
  Standard_E2ds_v5: 1718,
  Standard_E2ads_v5: 1718,
  Standard_E4s_v3: 3437,
  Standard_E4ds_v4: 3437,
  Standard_E4ds_v5: 3437,
  Standard_E4ads_v5: 3437,
};
const DOCUMENTED_RESERVED = 15;

const main = readBicep("main.bicep");
const mainCode = code(main);
const parametersFile = (
  JSON.parse(readFileSync(path.join(__dirname, "..", "..", "infra", "main.parameters.json"), "utf8")) as {
    parameters: Record<string, { value: unknown }>;
  }
).parameters;

/** `param <name> int = <n>` or `param <name> string = '<s>'`: the default written in main.bicep. */
function bicepDefault(name: string): number | string {
  const m = new RegExp(`^param\\s+${name}\\s+(int|string)\\s*=\\s*(\\d+|'[^']*')\\s*$`, "m").exec(main);
  if (!m?.[2]) throw new Error(`main.bicep has no literal default for param ${name}`);
  return m[1] === "int" ? Number(m[2]) : m[2].slice(1, -1);
}

interface Deployment {
  maximumInstanceCount: number;
  postgresPoolMax: number;
  postgresSpareConnections: number;
  postgresMaxConnections: number;
  postgresSkuName: string;
}
const NAMES = ["maximumInstanceCount", "postgresPoolMax", "postgresSpareConnections", "postgresMaxConnections", "postgresSkuName"] as const;

const defaults = Object.fromEntries(NAMES.map((n) => [n, bicepDefault(n)])) as unknown as Deployment;
const withParametersFile = Object.fromEntries(NAMES.map((n) => [n, parametersFile[n]?.value ?? defaults[n]])) as unknown as Deployment;

/** The budget, computed here from the documented limits. */
function budget(d: Deployment): { needed: number; available: number } {
  const server = d.postgresMaxConnections > 0 ? d.postgresMaxConnections : DOCUMENTED_MAX_CONNECTIONS[d.postgresSkuName];
  if (server === undefined) throw new Error(`no documented max_connections for ${d.postgresSkuName}`);
  return { needed: d.maximumInstanceCount * d.postgresPoolMax + d.postgresSpareConnections, available: server - DOCUMENTED_RESERVED };
}

describe("the PostgreSQL connection budget", () => {
  it.each([
    ["the Bicep defaults", defaults],
    ["main.parameters.json", withParametersFile],
  ])("fits the server's user connections with %s", (_, deployment) => {
    const { needed, available } = budget(deployment);
    expect(needed).toBeLessThanOrEqual(available);
  });

  it("is the default B1ms server's 35 user connections with the defaults: 10 instances × 3 + 5 spare", () => {
    expect(defaults).toEqual({ maximumInstanceCount: 10, postgresPoolMax: 3, postgresSpareConnections: 5, postgresMaxConnections: 0, postgresSkuName: "Standard_B1ms" });
    expect(budget(defaults)).toEqual({ needed: 35, available: 35 });
  });

  it("holds the documented max_connections for every SKU in the Bicep's table", () => {
    const table = /^var postgresDefaultMaxConnections = \{\n([\s\S]*?)\n\}/m.exec(main)?.[1] ?? "";
    const entries = Object.fromEntries([...table.matchAll(/^\s+(\w+): (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
    expect(Object.keys(entries).length).toBeGreaterThan(0);
    expect(entries).toEqual(Object.fromEntries(Object.keys(entries).map((sku) => [sku, DOCUMENTED_MAX_CONNECTIONS[sku]])));
    expect(main).toMatch(/^var postgresReservedConnections = 15$/m);
  });

  it("stops the deployment when the budget does not fit: the POSTGRES_POOL_MAX app setting goes through fail()", () => {
    expect(mainCode).toMatch(/^var postgresUserConnections = postgresServerConnections - postgresReservedConnections$/m);
    expect(mainCode).toMatch(/^var postgresConnectionBudget = maximumInstanceCount \* postgresPoolMax \+ postgresSpareConnections$/m);
    expect(mainCode).toMatch(/^var postgresPoolMaxChecked = postgresConnectionBudget <= postgresUserConnections \? postgresPoolMax : fail\('/m);
    expect(main).toMatch(/\{ name: 'POSTGRES_POOL_MAX', value: string\(postgresPoolMaxChecked\) \}/);
    // A SKU missing from the table fails too, unless postgresMaxConnections says what the server allows.
    expect(mainCode).toMatch(
      /^var postgresServerConnections = postgresMaxConnections > 0 \? postgresMaxConnections : contains\(postgresDefaultMaxConnections, postgresSkuName\) \? postgresDefaultMaxConnections\[postgresSkuName\] : fail\('/m,
    );
  });

  it("passes the maximum instance count the budget assumes to the Function App", () => {
    expect(mainCode).toMatch(/^\s+maximumInstanceCount: maximumInstanceCount$/m);
  });
});

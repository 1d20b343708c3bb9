/**
 * The security posture of infra/ is a set of parameters with safe defaults (text checks of the
 * Bicep; no compiler here, see bicepText.ts): IoT Hub keeps its shared access policies unless told
 * otherwise (DPS and built-in endpoint readers need them), PostgreSQL is not open to all of Azure,
 * and the app's identity is not a database admin.
 */
import path from "node:path";
import { code, params, readBicep } from "./bicepText";

const main = readBicep("main.bicep");
const mainCode = code(main);
const iotHub = readBicep(path.join("modules", "iotHub.bicep"));
const postgres = readBicep(path.join("modules", "postgres.bicep"));
const network = readBicep(path.join("modules", "network.bicep"));
const functionApp = readBicep(path.join("modules", "functionApp.bicep"));

/** The `param <name> <type> = <default>` line of main.bicep. */
const paramLine = (name: string) => new RegExp(`^param ${name} [^\\n]*$`, "m").exec(main)?.[0] ?? "";

describe("IoT Hub local auth", () => {
  it("is a parameter, false by default, passed to the hub", () => {
    expect(paramLine("iotHubDisableLocalAuth")).toBe("param iotHubDisableLocalAuth bool = false");
    expect(main).toMatch(/module iotHub '\.\/modules\/iotHub\.bicep'[\s\S]*?disableLocalAuth: iotHubDisableLocalAuth/);
    expect(iotHub).toMatch(/^\s+disableLocalAuth: disableLocalAuth$/m);
    expect(code(iotHub)).not.toMatch(/disableLocalAuth: true/);
  });

  it("documents why: DPS and built-in endpoint readers use the hub's shared access policies", () => {
    const description = /@description\('([^\n]*)'\)\nparam iotHubDisableLocalAuth/.exec(main)?.[1] ?? "";
    expect(description).toMatch(/Device Provisioning Service/);
    expect(description).toMatch(/built-in/);
    expect(iotHub).not.toMatch(/telemetry consumers are unaffected/);
  });
});

describe("PostgreSQL network", () => {
  it("defaults to a private endpoint with no public addresses", () => {
    expect(paramLine("postgresNetwork")).toBe("param postgresNetwork string = 'privateEndpoint'");
    expect(main).toMatch(/@allowed\(\[\s*'privateEndpoint'\s*'allowList'\s*\]\)\nparam postgresNetwork/);
    expect(paramLine("postgresAllowedIps")).toBe("param postgresAllowedIps array = []");
  });

  it("has no 0.0.0.0 firewall rule of its own: every rule comes from the allow list", () => {
    // Only the allow list's loop creates rules, and no address is written into the Bicep.
    expect(postgres.match(/^resource \w+ 'Microsoft\.DBforPostgreSQL\/flexibleServers\/firewallRules@/gm)).toHaveLength(1);
    expect(postgres).toMatch(/resource firewall '[^']+' = \[for \(ip, i\) in allowedIps: \{/);
    for (const file of ["main.bicep", path.join("modules", "postgres.bicep"), path.join("modules", "network.bicep")]) {
      expect(readBicep(file)).not.toMatch(/(start|end)IpAddress: '0\.0\.0\.0'/);
    }
    expect(main).toMatch(/allowedIps: postgresAllowedIps/);
  });

  it("turns public access off unless the allow list mode or an address asks for it", () => {
    expect(postgres).toMatch(/publicNetworkAccess: network == 'allowList' \|\| !empty\(allowedIps\) \? 'Enabled' : 'Disabled'/);
  });

  it("privateEndpoint: VNet with a Flex Consumption subnet, a PostgreSQL private endpoint and its private DNS zone", () => {
    expect(main).toMatch(/module network '\.\/modules\/network\.bicep' = if \(postgresNetwork == 'privateEndpoint'\)/);
    expect(network).toMatch(/serviceName: 'Microsoft\.App\/environments'/);
    expect(network).toMatch(/groupIds: \[\s*'postgresqlServer'\s*\]/);
    expect(network).toMatch(/var postgresPrivateDnsZone = 'privatelink\.postgres\.database\.azure\.com'/);
    expect(network).toMatch(/privateDnsZoneId: dnsZone\.id/);
    expect(network).toMatch(/virtualNetwork: \{\s*id: vnet\.id\s*\}/);
    // The app integrates with that subnet only in this mode.
    expect(main).toMatch(/virtualNetworkSubnetId: postgresNetwork == 'privateEndpoint' \? network\.outputs\.appSubnetId : ''/);
    expect(functionApp).toMatch(/virtualNetworkSubnetId: empty\(virtualNetworkSubnetId\) \? null : virtualNetworkSubnetId/);
  });
});

describe("PostgreSQL identities", () => {
  it("makes only the operator an Entra admin; the app's identity is not one", () => {
    const admins = [...postgres.matchAll(/^resource \w+ 'Microsoft\.DBforPostgreSQL\/flexibleServers\/administrators@/gm)];
    expect(admins).toHaveLength(1);
    expect(postgres).toMatch(/resource operatorAdmin '[^']+' = \{\s*parent: server\s*name: operatorPrincipalId/);
    expect(params(postgres).map((p) => p.name)).not.toEqual(expect.arrayContaining(["appPrincipalId"]));
    expect(mainCode).not.toMatch(/appPrincipalId|appPrincipalName/);
  });

  it("requires the operator (someone must administer the database and run the setup)", () => {
    const operator = params(main).filter((p) => p.name.startsWith("operatorPrincipal"));
    expect(operator.filter((p) => !p.hasDefault).map((p) => p.name).sort()).toEqual(["operatorPrincipalId", "operatorPrincipalName"]);
  });

  it("signs the app in as its identity's own principal and hands the setup what it needs", () => {
    expect(main).toMatch(/\{ name: 'POSTGRES_USER', value: appIdentity\.outputs\.name \}/);
    expect(main).toMatch(/output APP_IDENTITY_PRINCIPAL_ID string = appIdentity\.outputs\.principalId/);
    expect(main).toMatch(/output POSTGRES_ADMIN_USER string = operatorPrincipalName/);
    expect(postgres).toMatch(/twin_reconciler_app/);
  });
});

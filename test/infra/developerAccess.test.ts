/**
 * `func start` against the deployed resources: local.settings.azure.json.example (copied to
 * local.settings.json) connects with the developer's own identity, every value it needs from Azure
 * is a deployment output of the same name (`azd env get-values` lists them), and the operator holds
 * the roles the host and the trigger need.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { loadConfig, localOnlySettingNames, settingNames } from "../../shared/config";
import { readBicep } from "./bicepText";

const root = path.join(__dirname, "..", "..");
const readValues = (file: string) => (JSON.parse(readFileSync(path.join(root, file), "utf8")) as { Values: Record<string, string> }).Values;
const azure = readValues("local.settings.azure.json.example");
const local = readValues("local.settings.json.example");
const main = readBicep("main.bicep");
const outputs = [...main.matchAll(/^output (\w+) /gm)].map((m) => m[1] ?? "");

describe("local.settings.azure.json.example", () => {
  it("is a valid configuration: Azure Database for PostgreSQL and IoT Hub through Entra ID", () => {
    const config = loadConfig(azure);
    expect(config.store).toMatchObject({ kind: "postgresEntra", host: azure["POSTGRES_HOST"], user: azure["POSTGRES_USER"] });
  });

  it("holds no connection string, key or local-only setting: the host and the app sign in as the developer", () => {
    const identityBased = ["FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage__accountName", "TwinEvents__fullyQualifiedNamespace"];
    expect(Object.keys(azure).filter((name) => !settingNames.includes(name) && !identityBased.includes(name))).toEqual([]);
    expect(Object.keys(azure).filter((name) => localOnlySettingNames.includes(name))).toEqual([]);
    expect(Object.keys(azure)).not.toEqual(expect.arrayContaining(["AzureWebJobsStorage"]));
    expect(Object.keys(azure)).not.toContain("TwinEvents");
    expect(Object.keys(azure).filter((name) => /__credential$|__clientId$/.test(name))).toEqual([]);
    expect(JSON.stringify(azure)).not.toMatch(/SharedAccessKey|AccountKey|password=/i);
  });

  it("sets every setting the local example sets for the bindings and the app (except the local-only ones)", () => {
    const connections = ["AzureWebJobsStorage", "TwinEvents", "POLICY_PATH"];
    const needed = Object.keys(local).filter((name) => !localOnlySettingNames.includes(name) && !connections.includes(name));
    expect(needed.filter((name) => !(name in azure))).toEqual([]);
  });

  it("takes each Azure value from a main.bicep output of the same name", () => {
    for (const name of ["AzureWebJobsStorage__accountName", "TwinEvents__fullyQualifiedNamespace", "TWIN_EVENTS_HUB_NAME", "POSTGRES_HOST", "POSTGRES_DATABASE", "IOTHUB_HOST_NAME"]) {
      expect({ name, output: outputs.includes(name) }).toEqual({ name, output: true });
    }
    // Not the app's consumer group: a local host must not take partitions from the deployed app.
    expect(outputs).toContain("TWIN_EVENTS_DEV_CONSUMER_GROUP");
    expect(azure["TWIN_EVENTS_CONSUMER_GROUP"]).toBe("twin-reconciler-dev");
    expect(main).toMatch(/var twinEventsConsumerGroup = 'twin-reconciler'/);
    expect(main).toMatch(/developerConsumerGroupName: '\$\{twinEventsConsumerGroup\}-dev'/);
  });

  it("does not re-push from a developer's machine unless told to", () => {
    expect(azure["REPUSH_DRY_RUN"]).toBe("true");
  });
});

describe("the operator's developer roles", () => {
  it("Azure Event Hubs Data Receiver on the twin-changes event hub", () => {
    const eventHubs = readBicep(path.join("modules", "eventHubs.bicep"));
    expect(eventHubs).toMatch(
      /resource developerReceiverRole '[^']+' = \{\s*name: guid\(eventHub\.id, developerPrincipalId, roles\.eventHubsDataReceiver\)\s*scope: eventHub\s*properties: \{\s*roleDefinitionId: subscriptionResourceId\('Microsoft\.Authorization\/roleDefinitions', roles\.eventHubsDataReceiver\)\s*principalId: developerPrincipalId\s*principalType: developerPrincipalType/,
    );
    expect(eventHubs).toMatch(/eventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde' \/\/ Azure Event Hubs Data Receiver/);
    expect(main).toMatch(/developerPrincipalId: operatorPrincipalId\s*developerPrincipalType: operatorPrincipalType/);
  });

  it("the host's storage roles (blob owner, queue and table contributor) on its storage account", () => {
    const roles = readBicep(path.join("modules", "developerRoles.bicep"));
    for (const [key, guid, name] of [
      ["storageBlobDataOwner", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "Storage Blob Data Owner"],
      ["storageQueueDataContributor", "974c5e8b-45b9-4653-ba55-5f855dd0fb88", "Storage Queue Data Contributor"],
      ["storageTableDataContributor", "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "Storage Table Data Contributor"],
    ] as const) {
      expect(roles).toContain(`${key}: '${guid}' // ${name}`);
      expect(roles).toMatch(new RegExp(`scope: storageAccount\\s*properties: \\{\\s*roleDefinitionId: subscriptionResourceId\\('Microsoft\\.Authorization/roleDefinitions', roles\\.${key}\\)\\s*principalId: principalId\\s*principalType: principalType`));
    }
    expect(main).toMatch(/module developerRoles '\.\/modules\/developerRoles\.bicep' = \{[\s\S]*?principalId: operatorPrincipalId\s*principalType: operatorPrincipalType/);
  });
});

import { ConfigError, loadConfig, localOnlySettingNames, settingNames, type Config } from "../../shared/config";

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error("loadConfig accepted the settings");
}

const GUID = "0b6c5a4e-1f2d-4c3b-9a8e-7d6c5b4a3f21";

describe("loadConfig", () => {
  it("defaults to PGlite in .data/pglite, no hub, the default policy and the documented timer settings", () => {
    const expected: Config = {
      store: { kind: "pglite", dataDir: ".data/pglite" },
      hub: { kind: "none" },
      hubTwinOpsPerSecond: 10,
      policy: { kind: "default" },
      twinEvents: { hubName: "twin-changes", consumerGroup: "$Default" },
      repush: {
        schedule: "0 * * * * *",
        maxDevicesPerRun: 100,
        backoffBaseMs: 120_000,
        backoffCapMs: 3_600_000,
        maxAttempts: 5,
        dryRun: false,
        leaseMs: 300_000,
      },
      retention: { schedule: "0 0 * * * *", historyMs: 90 * 86_400_000, deadLetterMs: 30 * 86_400_000 },
      fleetSync: {
        schedule: "0 0 3 * * *",
        pageSize: 1000,
        runBudgetMs: 240_000,
        queriesPerMinute: 20,
        resyncSchedule: "30 * * * * *",
        resyncBackoffBaseMs: 60_000,
        resyncBackoffCapMs: 3_600_000,
      },
      azureClientId: undefined,
    };
    expect(loadConfig({})).toEqual(expected);
  });

  it("treats an empty or blank setting as unset", () => {
    expect(loadConfig({ DATABASE_URL: "", IOTHUB_HOST_NAME: "  ", REPUSH_LEASE: "" })).toEqual(loadConfig({}));
  });

  it("reads PGLITE_DATA_DIR=memory as an in-memory PGlite", () => {
    expect(loadConfig({ PGLITE_DATA_DIR: "memory" }).store).toEqual({ kind: "pglite", dataDir: null });
  });

  it("selects PostgreSQL by DATABASE_URL", () => {
    expect(loadConfig({ DATABASE_URL: "postgres://app@localhost:5432/twins" }).store).toEqual({
      kind: "postgres",
      connectionString: "postgres://app@localhost:5432/twins",
    });
  });

  it("selects Entra token auth from POSTGRES_HOST, POSTGRES_DATABASE and POSTGRES_USER, on port 5432 by default", () => {
    const config = loadConfig({
      POSTGRES_HOST: "psql-x.postgres.database.azure.com",
      POSTGRES_DATABASE: "twin_reconciler",
      POSTGRES_USER: "id-twinrec-app",
      AZURE_CLIENT_ID: GUID,
    });
    expect(config.store).toEqual({
      kind: "postgresEntra",
      host: "psql-x.postgres.database.azure.com",
      port: 5432,
      database: "twin_reconciler",
      user: "id-twinrec-app",
      clientId: GUID,
    });
  });

  it("selects the hub by connection string, with the local emulator's port and CA when given", () => {
    const connectionString = "HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=a2V5";
    expect(loadConfig({ IOTHUB_CONNECTION_STRING: connectionString }).hub).toEqual({ kind: "connectionString", connectionString, emulator: undefined });
    expect(loadConfig({ IOTHUB_CONNECTION_STRING: connectionString, IOTHUB_EMULATOR_PORT: "8443", IOTHUB_EMULATOR_CA_FILE: "ca.pem" }).hub).toEqual({
      kind: "connectionString",
      connectionString,
      emulator: { port: 8443, caFile: "ca.pem" },
    });
  });

  it("selects the hub by host name with the managed identity's client ID", () => {
    expect(loadConfig({ IOTHUB_HOST_NAME: "iot-x.azure-devices.net", AZURE_CLIENT_ID: GUID }).hub).toEqual({
      kind: "identity",
      hostName: "iot-x.azure-devices.net",
      clientId: GUID,
    });
  });

  it("reads the policy from POLICY_PATH or parses POLICY_JSON", () => {
    expect(loadConfig({ POLICY_PATH: "policy.json" }).policy).toEqual({ kind: "file", path: "policy.json" });
    expect(loadConfig({ POLICY_JSON: '{"rules":[]}' }).policy).toEqual({ kind: "inline", json: { rules: [] } });
  });

  it("reads durations as <n><unit> or ISO-8601, and booleans as true/false/1/0/yes/no", () => {
    const config = loadConfig({ REPUSH_BACKOFF_BASE: "PT30S", REPUSH_BACKOFF_CAP: "2h", REPUSH_LEASE: "90s", REPUSH_DRY_RUN: "yes" });
    expect(config.repush).toMatchObject({ backoffBaseMs: 30_000, backoffCapMs: 7_200_000, leaseMs: 90_000, dryRun: true });
  });

  it("names every bad setting in one ConfigError", () => {
    const bad: Record<string, string> = {
      DATABASE_URL: "mysql://db/twins",
      PGLITE_DATA_DIR: ".data/x", // fine: PGlite settings are ignored when PostgreSQL is chosen
      IOTHUB_CONNECTION_STRING: "HostName=h",
      HUB_TWIN_OPS_PER_SECOND: "0",
      POLICY_JSON: "[1,2]",
      TWIN_EVENTS_HUB_NAME: "-twin-",
      TWIN_EVENTS_CONSUMER_GROUP: "has space",
      REPUSH_SCHEDULE: "*/5 * * * *",
      REPUSH_MAX_DEVICES_PER_RUN: "lots",
      REPUSH_BACKOFF_BASE: "soon",
      REPUSH_BACKOFF_CAP: "0s",
      REPUSH_MAX_ATTEMPTS: "2.5",
      REPUSH_DRY_RUN: "maybe",
      REPUSH_LEASE: "P1Y",
      AZURE_CLIENT_ID: "my-app",
      IOTHUB_EMULATOR_PORT: "70000",
    };
    const error = configError(bad);
    const named = error.issues.map((i) => i.setting);
    const expected = Object.keys(bad).filter((name) => name !== "PGLITE_DATA_DIR");
    expect([...new Set(named)].sort()).toEqual(expected.sort());
    for (const name of expected) expect(error.message).toMatch(new RegExp(`^  ${name}: \\S`, "m"));
    expect(error.code).toBe("CONFIG_INVALID");
  });

  it("names a bad POSTGRES_PORT and IOTHUB_HOST_NAME", () => {
    const error = configError({ POSTGRES_HOST: "db.example.com", POSTGRES_DATABASE: "d", POSTGRES_USER: "u", POSTGRES_PORT: "0", IOTHUB_HOST_NAME: "https://hub" });
    expect(error.issues.map((i) => i.setting).sort()).toEqual(["IOTHUB_HOST_NAME", "POSTGRES_PORT"]);
  });

  it.each([
    ["HUB_TWIN_OPS_PER_SECOND", "0.0000001", /from 0\.1 to 10000/],
    ["HUB_TWIN_OPS_PER_SECOND", "0.09", /from 0\.1 to 10000/],
    ["HUB_TWIN_OPS_PER_SECOND", "10001", /from 0\.1 to 10000/],
    ["HUB_TWIN_OPS_PER_SECOND", "1e3", /from 0\.1 to 10000/],
    ["REPUSH_LEASE", "3000000d", /too long: at most 1d/],
    ["REPUSH_LEASE", "P99999999D", /too long: at most 1d/],
    ["REPUSH_LEASE", "500ms", /too short: at least 1s/],
    ["REPUSH_BACKOFF_BASE", "2d", /too long: at most 1d/],
    ["REPUSH_BACKOFF_BASE", "0s", /too short: at least 1s/],
    ["REPUSH_BACKOFF_CAP", "30d", /too long: at most 7d/],
    ["REPUSH_BACKOFF_CAP", `${"9".repeat(400)}h`, /too long: at most 7d/],
    ["REPUSH_SCHEDULE", "0 0 0 31 4 *", /never fires/],
    ["REPUSH_SCHEDULE", "0 0 0 30 2 *", /never fires/],
  ])("refuses %s=%s, naming the bound", (name, value, problem) => {
    const error = configError({ [name]: value });
    expect(error.issues).toEqual([{ setting: name, problem: expect.stringMatching(problem) }]);
    expect(error.message.split("\n")).toHaveLength(2);
  });

  it("accepts every bound itself", () => {
    const config = loadConfig({
      HUB_TWIN_OPS_PER_SECOND: "0.1",
      REPUSH_LEASE: "1d",
      REPUSH_BACKOFF_BASE: "1s",
      REPUSH_BACKOFF_CAP: "P7D",
      REPUSH_SCHEDULE: "0 0 0 29 2 *",
    });
    expect(config).toMatchObject({ hubTwinOpsPerSecond: 0.1, repush: { leaseMs: 86_400_000, backoffBaseMs: 1000, backoffCapMs: 7 * 86_400_000 } });
  });

  it("requires a cap no shorter than the back-off base", () => {
    expect(configError({ REPUSH_BACKOFF_BASE: "10m", REPUSH_BACKOFF_CAP: "5m" }).issues).toEqual([
      { setting: "REPUSH_BACKOFF_CAP", problem: "must be at least REPUSH_BACKOFF_BASE" },
    ]);
  });

  it("names each POSTGRES_* setting missing for Entra auth", () => {
    expect(configError({ POSTGRES_HOST: "db.example.com" }).issues.map((i) => i.setting)).toEqual(["POSTGRES_DATABASE", "POSTGRES_USER"]);
  });

  it.each([
    [{ DATABASE_URL: "postgres://localhost/db", POSTGRES_HOST: "db.example.com", POSTGRES_DATABASE: "d", POSTGRES_USER: "u" }, "DATABASE_URL"],
    [{ IOTHUB_CONNECTION_STRING: "HostName=h.net;SharedAccessKeyName=s;SharedAccessKey=k", IOTHUB_HOST_NAME: "h.net" }, "IOTHUB_HOST_NAME"],
    [{ POLICY_PATH: "p.json", POLICY_JSON: "{}" }, "POLICY_JSON"],
    [{ IOTHUB_HOST_NAME: "h.net", IOTHUB_EMULATOR_PORT: "8443" }, "IOTHUB_EMULATOR_PORT"],
    [{ IOTHUB_EMULATOR_CA_FILE: "ca.pem" }, "IOTHUB_EMULATOR_CA_FILE"],
  ])("refuses settings that exclude each other: %j names %s", (env, setting) => {
    expect(configError(env).issues.map((i) => i.setting)).toEqual([setting]);
  });

  it("never echoes a secret value in a config error", () => {
    const secrets = {
      DATABASE_URL: "mysql://app:Hunter2Secret@db/twins",
      IOTHUB_CONNECTION_STRING: `HostName=h.net;DeviceId=d1;SharedAccessKey=${Buffer.from("secretKeyForDevice").toString("base64")}`,
    };
    const error = configError(secrets);
    expect(error.issues.map((i) => i.setting).sort()).toEqual(["DATABASE_URL", "IOTHUB_CONNECTION_STRING"]);
    const shown = `${error.message}\n${JSON.stringify(error.issues)}\n${String(error.stack)}`;
    expect(shown).not.toContain("Hunter2Secret");
    expect(shown).not.toContain(Buffer.from("secretKeyForDevice").toString("base64"));
    expect(error.message).toContain("device connection string");
  });
});

describe("setting names", () => {
  it("lists every setting the schema reads, the local-only ones marked", () => {
    expect(settingNames).toEqual(expect.arrayContaining(["DATABASE_URL", "POSTGRES_HOST", "IOTHUB_HOST_NAME", "REPUSH_LEASE", "AZURE_CLIENT_ID"]));
    expect([...localOnlySettingNames].sort()).toEqual(
      ["DATABASE_URL", "IOTHUB_CONNECTION_STRING", "IOTHUB_EMULATOR_CA_FILE", "IOTHUB_EMULATOR_PORT", "PGLITE_DATA_DIR"].sort(),
    );
  });

  it("reads nothing beyond the listed settings", () => {
    const env = new Proxy({} as Record<string, string | undefined>, {
      get: (_target, name) => {
        if (typeof name === "string" && !settingNames.includes(name)) throw new Error(`read unlisted setting ${name}`);
        return undefined;
      },
    });
    expect(() => loadConfig(env)).not.toThrow();
  });
});

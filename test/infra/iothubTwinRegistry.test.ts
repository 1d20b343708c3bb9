import { inspect } from "node:util";
import { Twin as SdkTwin } from "azure-iothub";
import type { Registry } from "azure-iothub";
import { loadConfig } from "../../shared/config";
import { createTwinRegistry, useLocalHubEndpoint } from "../../shared/hub/createTwinRegistry";
import { iothubTwinRegistry, type RegistryTwinClient } from "../../shared/hub/iothubTwinRegistry";
import { TokenBucket } from "../../shared/hub/TokenBucket";
import { hubErrorKind, type TwinPatch } from "../../shared/hub/TwinRegistry";
import { startEmulator, useEmulatorHubEndpoint, type Emulator } from "../../local/emulator";

type SdkDevice = ConstructorParameters<typeof SdkTwin>[0];

const SAS = "SharedAccessSignature sr=h.azure-devices.net&sig=U2VjcmV0U2lnbmF0dXJlVmFsdWU%3D&se=1795410634536&skn=iothubowner";

/** An error shaped like azure-iothub's (name, message, response whose request carries the Authorization header). */
function sdkError(name: string, statusCode: number, headers: Record<string, string> = {}): Error {
  const error = new Error(`Precondition failed (request had Authorization: ${SAS})`);
  error.name = name;
  Object.assign(error, {
    response: { statusCode, headers, req: { _header: `PATCH /twins/d1 HTTP/1.1\r\nAuthorization: ${SAS}\r\n` } },
    responseBody: `{"Message":"ErrorCode:PreconditionFailed;x","auth":"${SAS}"}`,
  });
  return error;
}

/** Fake Registry behind the adapter's public RegistryTwinClient shape: records calls, answers with `answer`. */
function fakeRegistry(answer: () => Promise<unknown>) {
  const calls: unknown[][] = [];
  const respond = (...args: unknown[]) => {
    calls.push(args);
    return answer().then((responseBody) => ({ responseBody }));
  };
  const client: RegistryTwinClient = {
    getTwin: (deviceId) => respond("getTwin", deviceId),
    getModuleTwin: (deviceId, moduleId) => respond("getModuleTwin", deviceId, moduleId),
    updateTwin: (deviceId, patch, etag) => respond("updateTwin", deviceId, patch, etag),
    updateModuleTwin: (deviceId, moduleId, patch, etag) => respond("updateModuleTwin", deviceId, moduleId, patch, etag),
  };
  return { client, calls };
}

const sdkTwinJson = {
  deviceId: "d1",
  etag: "AAAAAAAAAAU=",
  version: 5,
  status: "enabled",
  tags: { site: "north" },
  properties: {
    desired: { interval: 30, $metadata: { $lastUpdated: "2026-01-01T00:00:00Z" }, $version: 3 },
    reported: { interval: 10, $metadata: { $lastUpdated: "2026-01-01T00:00:01Z" }, $version: 2 },
  },
};

describe("iothubTwinRegistry", () => {
  it("maps the SDK's twin (properties.desired/reported) to ours", async () => {
    const sdkTwin = new SdkTwin(sdkTwinJson as unknown as SdkDevice, {} as Registry);
    const { client, calls } = fakeRegistry(async () => sdkTwin);
    const twin = await iothubTwinRegistry(client).getTwin({ deviceId: "d1", moduleId: null });
    expect(twin).toEqual({
      deviceId: "d1",
      moduleId: null,
      version: 5,
      etag: "AAAAAAAAAAU=",
      tags: { site: "north" },
      desired: sdkTwinJson.properties.desired,
      reported: sdkTwinJson.properties.reported,
    });
    expect(calls).toEqual([["getTwin", "d1"]]);
  });

  it("reads and writes module twins through the module calls", async () => {
    const { client, calls } = fakeRegistry(async () => ({ ...sdkTwinJson, moduleId: "m1" }));
    const registry = iothubTwinRegistry(client);
    const patch: TwinPatch = { properties: { desired: { interval: 60 } } };
    expect((await registry.getTwin({ deviceId: "d1", moduleId: "m1" })).moduleId).toBe("m1");
    await registry.updateTwin({ deviceId: "d1", moduleId: "m1" }, patch, "AAAAAAAAAAU=");
    await registry.updateTwin({ deviceId: "d1", moduleId: null }, patch, "AAAAAAAAAAU=");
    expect(calls).toEqual([
      ["getModuleTwin", "d1", "m1"],
      ["updateModuleTwin", "d1", "m1", patch, "AAAAAAAAAAU="],
      ["updateTwin", "d1", patch, "AAAAAAAAAAU="],
    ]);
  });

  it("never hands on the SDK's placeholder etag '*' as a real etag", async () => {
    const { client } = fakeRegistry(async () => new SdkTwin({ ...sdkTwinJson, etag: undefined } as unknown as SdkDevice, {} as Registry));
    expect((await iothubTwinRegistry(client).getTwin({ deviceId: "d1", moduleId: null })).etag).toBeUndefined();
  });

  it("keeps the SDK's error name, status and Retry-After so callers can branch on them", async () => {
    const { client } = fakeRegistry(() => Promise.reject(sdkError("ThrottlingError", 429, { "retry-after": "7" })));
    const error = await iothubTwinRegistry(client).getTwin({ deviceId: "d1", moduleId: null }).catch((e: unknown) => e);
    expect(hubErrorKind(error)).toBe("throttled");
    expect(error).toMatchObject({ name: "ThrottlingError", statusCode: 429, retryAfterMs: 7000 });
  });

  it("never puts a SAS token or key into its errors, however they are printed", async () => {
    const { client } = fakeRegistry(() => Promise.reject(sdkError("InvalidEtagError", 412)));
    const error = await iothubTwinRegistry(client)
      .updateTwin({ deviceId: "d1", moduleId: null }, { properties: { desired: { a: 1 } } }, "x")
      .catch((e: unknown) => e);
    expect(hubErrorKind(error)).toBe("etagMismatch");
    for (const shown of [String(error), inspect(error, { depth: 10, showHidden: true }), JSON.stringify(error), (error as Error).stack ?? ""]) {
      expect(shown).not.toContain("U2VjcmV0U2lnbmF0dXJlVmFsdWU");
    }
    expect((error as Error).message).toMatch(/update twin d1 failed: InvalidEtagError/);
  });

  it("stops waiting when the signal aborts", async () => {
    const { client } = fakeRegistry(() => new Promise(() => undefined));
    const controller = new AbortController();
    const pending = iothubTwinRegistry(client).getTwin({ deviceId: "d1", moduleId: null }, { signal: controller.signal });
    controller.abort(new Error("shutting down"));
    await expect(pending).rejects.toThrow("shutting down");
  });
});

describe("createTwinRegistry", () => {
  it("returns no registry when no hub is configured", () => {
    expect(createTwinRegistry(loadConfig({}))).toBeNull();
  });

  it("refuses the emulator settings in a process that has not installed the local emulator's client", () => {
    // shared/hub knows no emulator port or CA: local/ installs the one wiring (startEmulator does).
    useLocalHubEndpoint(undefined);
    const config = loadConfig({ IOTHUB_CONNECTION_STRING: "HostName=localhost;SharedAccessKeyName=iothubowner;SharedAccessKey=a2V5", IOTHUB_EMULATOR_PORT: "8443" });
    expect(() => createTwinRegistry(config)).toThrow(/IOTHUB_EMULATOR_PORT/);
    useEmulatorHubEndpoint();
    expect(createTwinRegistry(config)).not.toBeNull();
  });

  describe("against the local IoT Hub emulator (port and CA from IOTHUB_EMULATOR_*)", () => {
    let emulator: Emulator;
    beforeAll(async () => {
      emulator = await startEmulator({ throttling: "off" });
      emulator.createDevice("cfg-1");
      emulator.createModule("cfg-1", "m1");
    });
    afterAll(() => emulator.stop());

    const registryFor = () =>
      createTwinRegistry(
        loadConfig({
          IOTHUB_CONNECTION_STRING: emulator.serviceConnectionString,
          IOTHUB_EMULATOR_PORT: String(emulator.httpsPort),
          IOTHUB_EMULATOR_CA_FILE: emulator.caFile,
          HUB_TWIN_OPS_PER_SECOND: "1000",
        }),
        { bucket: new TokenBucket({ ratePerSecond: 1000, burst: 100 }) },
      );

    it("reads and updates device and module twins with etags", async () => {
      const registry = registryFor();
      if (!registry) throw new Error("no registry");
      for (const key of [{ deviceId: "cfg-1", moduleId: null }, { deviceId: "cfg-1", moduleId: "m1" }]) {
        const before = await registry.getTwin(key);
        expect(before).toMatchObject({ ...key, desired: { $version: 1 } });
        const after = await registry.updateTwin(key, { properties: { desired: { interval: 30 } } }, before.etag ?? "");
        expect(after.desired).toMatchObject({ interval: 30 });
        expect(after.version).toBeGreaterThan(before.version);
        const stale = await registry.updateTwin(key, { properties: { desired: { interval: 31 } } }, before.etag ?? "").catch((e: unknown) => e);
        expect(hubErrorKind(stale)).toBe("etagMismatch");
      }
    });

    it("reports a missing device as notFound", async () => {
      const registry = registryFor();
      const error = await registry?.getTwin({ deviceId: "nobody", moduleId: null }).catch((e: unknown) => e);
      expect(hubErrorKind(error)).toBe("notFound");
    });

    it("reports a missing module of an existing device as notFound (azure-iothub raises it as a plain Error)", async () => {
      const registry = registryFor();
      const error = await registry?.getTwin({ deviceId: "cfg-1", moduleId: "gone" }).catch((e: unknown) => e);
      expect(hubErrorKind(error)).toBe("notFound");
    });

    it("does not take a hub that does not exist for a missing twin", () => {
      expect(hubErrorKind(Object.assign(new Error("Not found"), { name: "IotHubNotFoundError" }))).toBe("other");
    });
  });
});

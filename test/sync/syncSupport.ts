/**
 * Test support for the fleet sync suites: the emulator's hub model (`IotHub`) behind its real
 * HTTPS service API, read by the official azure-iothub `Registry` (SDK paging, SAS, error
 * translation) — assembled here rather than through `startEmulator` so the suites can count what
 * reaches the hub: every query and twin read is recorded where the request arrives, with the hub
 * clock's time and the twin it was for. One fake clock drives the hub, the limiters and the runs.
 */
import type { Registry } from "azure-iothub";
import type { IncomingMessage } from "node:http";
import { join } from "node:path";
import { iothubTwinRegistry } from "../../shared/hub/iothubTwinRegistry";
import { queryLimitedTwinQueries, queryLimiter } from "../../shared/hub/queryLimitedTwinQueries";
import { rateLimitedTwinRegistry, TokenBucket } from "../../shared/hub/TokenBucket";
import type { TwinQueries, TwinRegistry } from "../../shared/hub/TwinRegistry";
import { parsePolicy, type Policy } from "../../shared/policy/Policy";
import type { Database } from "../../shared/store/Database";
import type { FleetSyncDeps } from "../../shared/sync/syncFleetTwins";
import { isJsonObject, type JsonObject } from "../../shared/twin/json";
import { createRegistryClientFor } from "../../local/emulator/createRegistryClient";
import { ensureCertificates } from "../../local/emulator/ensureCertificates";
import { IotHub } from "../../local/emulator/IotHub";
import { startServiceApi } from "../../local/emulator/startServiceApi";
import type { ThrottleTier } from "../../local/emulator/Throttle";
import { fakeClock, type FakeClock } from "../repush/repushSupport";

export interface HubCall {
  op: "query" | "twinRead";
  at: number;
}

export interface SyncHub {
  hub: IotHub;
  clock: FakeClock;
  /** The unmodified SDK Registry (the tests' own reads of the hub). */
  sdk: Registry;
  /** The product's adapter over another SDK Registry (what the product is given). */
  registry: TwinRegistry & TwinQueries;
  /** Every service request that reached the hub's quota check, in order. */
  calls: HubCall[];
  /** Twins read with GET /twins (`device` or `device/module`), in order. */
  twinReads: string[];
  stop(): Promise<void>;
}

export async function startSyncHub(throttling: ThrottleTier = "off"): Promise<SyncHub> {
  const clock = fakeClock();
  const hub = new IotHub({ clock, throttling });
  const certs = await ensureCertificates(join(process.cwd(), ".data", "emulator"));
  const service = await startServiceApi(hub, { key: certs.keyPem, cert: certs.certPem, host: "127.0.0.1", port: 0 });
  const calls: HubCall[] = [];
  const twinReads: string[] = [];
  // Seen where requests arrive (a listener beside the API's own): only what the clients sent.
  service.server.on("request", (req: IncomingMessage) => {
    const path = new URL(req.url ?? "/", "https://hub").pathname.split("/").filter(Boolean).map(decodeURIComponent);
    if (req.method === "POST" && path[0] === "devices" && path[1] === "query") calls.push({ op: "query", at: clock.now() });
    if (req.method === "GET" && path[0] === "twins") {
      calls.push({ op: "twinRead", at: clock.now() });
      twinReads.push(path.length === 4 ? `${path[1]}/${path[3]}` : String(path[1]));
    }
  });
  const target = { connectionString: hub.serviceConnectionString(), port: service.port, ca: certs.caPem };
  const clients = [createRegistryClientFor(target), createRegistryClientFor(target)];
  return {
    hub,
    clock,
    sdk: clients[0]!.registry,
    registry: iothubTwinRegistry(clients[1]!.registry),
    calls,
    twinReads,
    async stop() {
      for (const c of clients) c.close();
      await service.close();
    },
  };
}

/** Every desired leaf under the default rule (equals); stale only after a day, so time in the tests never ages a record. */
export const syncPolicy: Policy = parsePolicy({ staleAfter: "1d", rules: [] });

export function syncDeps(db: Database, h: SyncHub, options: { queriesPerMinute?: number; pageSize?: number; runBudgetMs?: number } = {}): FleetSyncDeps {
  return {
    db,
    policy: syncPolicy,
    queries: queryLimitedTwinQueries(h.registry, queryLimiter(options.queriesPerMinute ?? 600, h.clock)),
    registry: rateLimitedTwinRegistry(h.registry, new TokenBucket({ ratePerSecond: 100, burst: 10, clock: h.clock })),
    settings: { pageSize: options.pageSize ?? 5, runBudgetMs: options.runBudgetMs ?? 3_600_000 },
    clock: () => h.clock.date(),
    owner: "test-run",
  };
}

/**
 * The test's own evaluator for `syncPolicy` on the fleets these suites build (scalar desired
 * values, each reported equal or not at all): compliant when reported equals desired, else pending.
 */
export function expectedStates(twin: { desired: JsonObject; reported: JsonObject }): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(twin.desired)) {
    if (key.startsWith("$")) continue;
    out[key] = JSON.stringify(twin.reported[key]) === JSON.stringify(value) ? "compliant" : "pending";
  }
  return out;
}

/** A hub twin as the official SDK reads it: desired and reported as plain JSON. */
export async function sdkTwin(sdk: Registry, deviceId: string, moduleId: string | null): Promise<{ desired: JsonObject; reported: JsonObject; version: number }> {
  const result = moduleId === null ? await sdk.getTwin(deviceId) : await sdk.getModuleTwin(deviceId, moduleId);
  const body = JSON.parse(JSON.stringify(result.responseBody)) as JsonObject;
  const properties = isJsonObject(body["properties"]) ? body["properties"] : {};
  return {
    desired: isJsonObject(properties["desired"]) ? properties["desired"] : {},
    reported: isJsonObject(properties["reported"]) ? properties["reported"] : {},
    version: Number(body["version"]),
  };
}

/** Stored record states of every twin: `device` or `device/module` → path → state. */
export async function storedStates(db: Database): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = {};
  const twins = await db.query<{ device_id: string; module_id: string }>("SELECT device_id, module_id FROM twins");
  for (const t of twins.rows) out[t.module_id ? `${t.device_id}/${t.module_id}` : t.device_id] = {};
  const records = await db.query<{ device_id: string; module_id: string; path: string; state: string }>("SELECT device_id, module_id, path, state FROM property_records");
  for (const r of records.rows) (out[r.module_id ? `${r.device_id}/${r.module_id}` : r.device_id] ??= {})[r.path] = r.state;
  return out;
}

/**
 * A fleet on the hub: devices `dev-00`… with `interval` and `mode` desired; even devices report
 * both, odd ones only `interval`; the first `modules` devices have a module `agent` desiring `level`.
 */
export function createFleet(h: SyncHub, devices: number, modules = 0, prefix = "dev-"): string[] {
  const ids: string[] = [];
  for (let i = 0; i < devices; i++) {
    const id = `${prefix}${String(i).padStart(2, "0")}`;
    ids.push(id);
    h.hub.registry.createDevice(id);
    const desired = { interval: i + 1, mode: i % 3 === 0 ? "eco" : "full" };
    h.hub.registry.updateTwin(id, { properties: { desired } });
    h.hub.registry.updateReported({ deviceId: id, moduleId: null }, i % 2 === 0 ? desired : { interval: i + 1 });
    if (i < modules) {
      h.hub.registry.createModule(id, "agent");
      h.hub.registry.updateTwin({ deviceId: id, moduleId: "agent" }, { properties: { desired: { level: i } } });
      if (i % 2 === 0) h.hub.registry.updateReported({ deviceId: id, moduleId: "agent" }, { level: i });
    }
  }
  return ids;
}

export async function clearSyncStore(db: Database): Promise<void> {
  await db.query("TRUNCATE twins, devices, property_records, property_history, dead_letters, fleet_sync_passes RESTART IDENTITY");
}

/** The most entries in any window [t, t + windowMs). */
export function busiestWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while ((sorted[j] as number) <= (sorted[i] as number) - windowMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

import { setMaxListeners } from "node:events";
import {
  assignBehaviours,
  defaultBehaviourMix,
  defaultBehaviourTiming,
  deviceRandom,
  type BehaviourMix,
  type BehaviourTiming,
  type DeviceBehaviour,
} from "./DeviceBehaviour";
import { SimulatedDevice, type DeviceCounters, type DeviceHub } from "./SimulatedDevice";

/** The hub as the fleet uses it: the emulator (`startEmulator`) satisfies this. */
export interface FleetHub extends DeviceHub {
  /** Registers a device identity; the fleet treats "already exists" as done. */
  createDevice(deviceId: string): unknown;
}

export interface FleetOptions {
  hub: FleetHub;
  /** How many devices (behaviours dealt by `mix`), or the exact devices to simulate. */
  devices: number | readonly { deviceId: string; behaviour: DeviceBehaviour }[];
  mix?: BehaviourMix;
  /** Seeds behaviour assignment and every device's delays and choices. */
  seed?: number;
  /** Device ids are `<prefix><nnn>` (default `sim-`). */
  idPrefix?: string;
  timing?: Partial<BehaviourTiming>;
  /** Devices connecting at the same time at most (default 16). */
  connectConcurrency?: number;
  log?: (message: string) => void;
}

export interface SimulatedDeviceInfo {
  deviceId: string;
  behaviour: DeviceBehaviour;
}

export interface FleetCounters extends DeviceCounters {
  devices: number;
  connected: number;
}

export interface Fleet {
  readonly devices: readonly SimulatedDeviceInfo[];
  behaviourOf(deviceId: string): DeviceBehaviour | undefined;
  counters(): FleetCounters;
  /** Makes a device drift now (any behaviour): it reports a value that differs from desired. */
  drift(deviceId: string): void;
  /** Resolves once every device that is not offline has connected and handled its twin. */
  ready(): Promise<void>;
  /** Resolves once every device, offline ones included, has connected and handled its twin. */
  allSynced(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a simulated fleet: registers the devices with the hub, then connects each one over MQTT
 * with the official device SDK (a few at a time, one CA for all) and lets it behave.
 */
export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const seed = options.seed ?? 1;
  const timing: BehaviourTiming = { ...defaultBehaviourTiming, ...options.timing };
  const log = options.log ?? (() => undefined);
  const infos: SimulatedDeviceInfo[] =
    typeof options.devices === "number"
      ? assignBehaviours(options.devices, options.mix ?? defaultBehaviourMix, seed).map((behaviour, i) => ({
          deviceId: `${options.idPrefix ?? "sim-"}${String(i + 1).padStart(3, "0")}`,
          behaviour,
        }))
      : [...options.devices];

  for (const { deviceId } of infos) {
    try {
      await options.hub.createDevice(deviceId);
    } catch (error) {
      const name = (error as { name?: unknown }).name;
      if (name !== "DeviceAlreadyExistsError" && !/already exists/i.test((error as Error).message)) throw error;
    }
  }

  const abort = new AbortController();
  setMaxListeners(0, abort.signal); // every device sleeps on it
  const counters: DeviceCounters = { connects: 0, reconnects: 0, twinGets: 0, notifications: 0, missedNotifications: 0, reports: 0, reportErrors: 0, drifts: 0, errors: 0 };
  const connectSlot = semaphore(options.connectConcurrency ?? 16);
  const devices = infos.map(
    (info) =>
      new SimulatedDevice(info.deviceId, info.behaviour, deviceRandom(seed, info.deviceId), {
        hub: options.hub,
        timing,
        connectSlot,
        counters,
        signal: abort.signal,
        log,
      }),
  );
  const started = devices.map((d) =>
    d.start().catch((error: unknown) => {
      counters.errors++;
      log(`${d.deviceId}: stopped: ${(error as Error).message}`);
    }),
  );
  const byId = new Map(infos.map((i) => [i.deviceId, i.behaviour]));
  let stopping: Promise<void> | undefined;

  return {
    devices: infos,
    behaviourOf: (deviceId) => byId.get(deviceId),
    drift: (deviceId) => {
      const device = devices.find((d) => d.deviceId === deviceId);
      if (!device) throw new Error(`no simulated device "${deviceId}"`);
      device.driftNow();
    },
    counters: () => ({ ...counters, devices: devices.length, connected: devices.filter((d) => d.connected).length }),
    ready: () => Promise.all(devices.filter((d) => d.behaviour !== "offline").map((d) => d.firstSync)).then(() => undefined),
    allSynced: () => Promise.all(devices.map((d) => d.firstSync)).then(() => undefined),
    stop: () => {
      stopping ??= (async () => {
        abort.abort();
        await Promise.all(devices.map((d) => d.stop()));
        await Promise.all(started);
      })();
      return stopping;
    },
  };
}

/** Runs at most `limit` pieces of work at once. */
function semaphore(limit: number): <T>(work: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(work: () => Promise<T>): Promise<T> => {
    // A finishing worker hands its slot straight to the next waiter, so `active` never exceeds `limit`.
    if (active >= limit) await new Promise<void>((resolve) => queue.push(resolve));
    else active++;
    try {
      return await work();
    } finally {
      const next = queue.shift();
      if (next) next();
      else active--;
    }
  };
}

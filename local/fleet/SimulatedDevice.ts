import { Client, type Twin } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { isJsonObject, type JsonObject } from "../../shared/twin/json";
import { mergePatch } from "../../shared/twin/mergePatch";
import { sleep } from "../host/sleep";
import { drawMs, type BehaviourTiming, type DeviceBehaviour } from "./DeviceBehaviour";
import { reportedPatchFor } from "./reportedPatchFor";

/** What a device needs of the hub: its connection string and the CA that signed the hub's certificate. */
export interface DeviceHub {
  deviceConnectionString(deviceId: string): string;
  readonly caPem: string;
}

export interface DeviceCounters {
  connects: number;
  /** Connections after the first (after an offline period or a dropped connection). */
  reconnects: number;
  twinGets: number;
  notifications: number;
  /** Desired notifications a lossy device missed. */
  missedNotifications: number;
  reports: number;
  reportErrors: number;
  drifts: number;
  errors: number;
}

export interface DeviceEnvironment {
  hub: DeviceHub;
  timing: BehaviourTiming;
  /** Shared by the fleet: at most a few devices connect at once (200 TLS handshakes in one process). */
  connectSlot: <T>(work: () => Promise<T>) => Promise<T>;
  counters: DeviceCounters;
  signal: AbortSignal;
  log: (message: string) => void;
}

type RetryPolicyArg = Parameters<Client["setRetryPolicy"]>[0];
/** The SDK would reconnect on its own but not re-read the twin; the device does the full reconnect flow itself. */
const noSdkRetry = { shouldRetry: () => false, nextRetryTimeout: () => 0 } as unknown as RetryPolicyArg;

/**
 * One simulated device on the official device SDK (azure-iot-device + MQTT), following the seed
 * tutorials' flow: connect, GET the twin, apply and report every desired property, then apply and
 * report each desired patch as it comes. Its behaviour decides delays, missed notifications,
 * rejections, an offline period and spontaneous drift; all randomness comes from `random`.
 */
export class SimulatedDevice {
  private client: Client | undefined;
  private twin: Twin | undefined;
  private reportQueue: Promise<void> = Promise.resolve();
  private desired: JsonObject = {};
  private targetTemperatureInUse: unknown = 20;
  private driftTimer: NodeJS.Timeout | undefined;
  private offlineTimer: NodeJS.Timeout | undefined;
  private connectedOnce = false;
  private readonly rejects: { targetTemperature: boolean; telemetryConfig: boolean };
  /** Resolves once the device is connected and has handled its twin the first time. */
  readonly firstSync: Promise<void>;
  private resolveFirstSync!: () => void;

  constructor(
    readonly deviceId: string,
    readonly behaviour: DeviceBehaviour,
    private readonly random: () => number,
    private readonly env: DeviceEnvironment,
  ) {
    const which = random();
    this.rejects =
      behaviour !== "rejecting"
        ? { targetTemperature: false, telemetryConfig: false }
        : which < 0.4
          ? { targetTemperature: true, telemetryConfig: false }
          : which < 0.8
            ? { targetTemperature: false, telemetryConfig: true }
            : { targetTemperature: true, telemetryConfig: true };
    this.firstSync = new Promise((resolve) => (this.resolveFirstSync = resolve));
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  /** Connects (an offline device first waits out its offline period) and keeps the twin in sync. */
  async start(): Promise<void> {
    if (this.behaviour === "offline") await sleep(drawMs(this.random, this.env.timing.offlineFor), this.env.signal);
    await this.connect();
  }

  async stop(): Promise<void> {
    clearTimeout(this.driftTimer);
    clearTimeout(this.offlineTimer);
    const client = this.client;
    this.client = undefined;
    this.twin = undefined;
    await client?.close().catch(() => undefined);
  }

  /** The reconnect flow: new client, full twin GET, report everything desired, listen for patches. */
  private async connect(): Promise<void> {
    for (let attempt = 0; !this.env.signal.aborted; attempt++) {
      try {
        await this.env.connectSlot(() => this.openAndSync());
        return;
      } catch (error) {
        this.env.counters.errors++;
        await this.dropClient();
        const delay = Math.min(30_000, 500 * 2 ** Math.min(attempt, 6));
        this.env.log(`${this.deviceId}: connect failed (${(error as Error).message}); retrying in ${delay} ms`);
        await sleep(delay, this.env.signal);
      }
    }
  }

  private async openAndSync(): Promise<void> {
    const client = Client.fromConnectionString(this.env.hub.deviceConnectionString(this.deviceId), Mqtt);
    this.client = client;
    client.on("error", (error: Error) => {
      this.env.counters.errors++;
      this.env.log(`${this.deviceId}: client error: ${error.message}`);
    });
    client.on("disconnect", () => this.onDisconnect(client));
    client.setRetryPolicy(noSdkRetry);
    await client.setOptions({ ca: this.env.hub.caPem });
    await client.open();
    const twin = await client.getTwin();
    if (this.client !== client || this.env.signal.aborted) {
      await client.close().catch(() => undefined); // stopped meanwhile
      return;
    }
    this.twin = twin;
    this.env.counters.twinGets++;
    this.env.counters.connects++;
    if (this.connectedOnce) this.env.counters.reconnects++;
    this.connectedOnce = true;
    twin.on("error", (error: Error) => {
      this.env.counters.errors++;
      this.env.log(`${this.deviceId}: twin error: ${error.message}`);
    });
    // The SDK passes its own `properties.desired` object for the full twin (on GET and when this
    // listener is added) and the patch object for a notification: that tells the two apart.
    twin.on("properties.desired", (delta: Record<string, unknown>) => this.onDesired(twin, delta, delta === twin.properties.desired));
    if (this.behaviour === "offline") this.scheduleOfflineSpell();
  }

  /** An offline device drops off again after a while online, and comes back with the reconnect flow. */
  private scheduleOfflineSpell(): void {
    clearTimeout(this.offlineTimer);
    this.offlineTimer = setTimeout(() => {
      void this.dropClient()
        .then(() => sleep(drawMs(this.random, this.env.timing.offlineFor), this.env.signal))
        .then(() => this.connect());
    }, drawMs(this.random, this.env.timing.onlineFor));
    this.offlineTimer.unref();
  }

  private onDesired(twin: Twin, delta: Record<string, unknown>, fullTwin: boolean): void {
    if (this.twin !== twin) return;
    if (!fullTwin) {
      this.env.counters.notifications++;
      if (this.behaviour === "lossy" && this.random() < this.env.timing.lossyMissProbability) {
        this.env.counters.missedNotifications++;
        return;
      }
    }
    this.desired = fullTwin ? (structuredClone(delta) as JsonObject) : mergePatch(this.desired, delta as JsonObject);
    const desiredVersion = typeof delta.$version === "number" ? delta.$version : Number(this.desired.$version ?? 0);
    const delay = drawMs(this.random, this.behaviour === "slow" ? this.env.timing.slowReportDelay : this.env.timing.promptReportDelay);
    const patch = reportedPatchFor(delta, {
      desiredVersion,
      rejectTargetTemperature: this.rejects.targetTemperature,
      rejectTelemetryConfig: this.rejects.telemetryConfig,
      targetTemperatureInUse: this.targetTemperatureInUse,
    });
    if (!this.rejects.targetTemperature && delta.targetTemperature !== undefined) this.targetTemperatureInUse = delta.targetTemperature;
    this.enqueueReport(patch, delay, fullTwin ? () => this.resolveFirstSync() : undefined);
    const hasDesired = Object.keys(this.desired).some((k) => !k.startsWith("$"));
    if (this.behaviour === "drifting" && this.driftTimer === undefined && hasDesired) this.scheduleDrift();
  }

  /** One reported update in flight at a time, in order (azure-iot-sdk-c#1432). */
  private enqueueReport(patch: Record<string, unknown>, delayMs: number, after?: () => void): void {
    this.reportQueue = this.reportQueue.then(async () => {
      if (Object.keys(patch).length > 0) await sleep(delayMs, this.env.signal);
      const twin = this.twin;
      if (twin && Object.keys(patch).length > 0 && !this.env.signal.aborted) {
        try {
          await new Promise<void>((resolve, reject) => twin.properties.reported.update(patch, (err?: Error) => (err ? reject(err) : resolve())));
          this.env.counters.reports++;
        } catch (error) {
          this.env.counters.reportErrors++;
          this.env.log(`${this.deviceId}: reported update failed: ${(error as Error).message}`);
        }
      }
      after?.();
    });
  }

  /** Now and then a drifting device moves a reported value away from desired on its own. */
  private scheduleDrift(): void {
    this.driftTimer = setTimeout(() => {
      this.driftNow();
      this.scheduleDrift();
    }, drawMs(this.random, this.env.timing.driftEvery));
    this.driftTimer.unref();
  }

  /** Reports a value that differs from desired (maxTemperature + 2, else fanOn flipped). */
  driftNow(): void {
    const components = this.desired.components;
    const climate = isJsonObject(components) && isJsonObject(components.climate) ? components.climate : {};
    const patch =
      typeof climate.maxTemperature === "number"
        ? { maxTemperature: climate.maxTemperature + 2 }
        : typeof this.desired.fanOn === "boolean"
          ? { fanOn: !this.desired.fanOn }
          : { maxTemperature: 99 };
    this.env.counters.drifts++;
    this.enqueueReport(patch, 0);
  }

  private onDisconnect(client: Client): void {
    if (this.client !== client || this.env.signal.aborted) return;
    this.env.log(`${this.deviceId}: disconnected; reconnecting with a full twin GET`);
    void this.dropClient().then(() => this.connect());
  }

  private async dropClient(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.twin = undefined;
    await client?.close().catch(() => undefined);
  }
}

import { Client, ModuleClient, type Twin as DeviceTwin } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import { startEmulator, type Emulator } from "../../local/emulator";
import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";

// Device-side tests: the unmodified azure-iot-device MQTT client against the emulator over TLS.
let emulator: Emulator;
const clients: Client[] = [];

beforeAll(async () => {
  emulator = await startEmulator({ throttling: "off" });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await emulator.stop();
  await emulator.stop(); // idempotent
});

async function connect(deviceId: string): Promise<{ client: Client; twin: DeviceTwin }> {
  const client = Client.fromConnectionString(emulator.deviceConnectionString(deviceId), Mqtt);
  clients.push(client);
  await client.setOptions({ ca: emulator.caPem });
  const twin = await client.getTwin();
  return { client, twin };
}

function allEvents(): ReceivedEvent[] {
  return emulator.events.partitionIds.flatMap((p) => emulator.events.read(p, 0, 10_000));
}

function eventually(check: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    let tries = 0;
    const tick = (): void => {
      if (check()) return resolve();
      if (++tries > 200) return reject(new Error("condition not met"));
      setTimeout(tick, 10);
    };
    tick();
  });
}

test("getTwin over MQTT returns desired and reported with their $version", async () => {
  emulator.createDevice("mq-get");
  emulator.updateDesired("mq-get", { interval: 30 });
  const { twin } = await connect("mq-get");
  expect(twin.properties.desired).toMatchObject({ interval: 30, $version: 2 });
  expect(twin.properties.reported).toMatchObject({ $version: 1 });
  expect(emulator.getDevice("mq-get").connectionState).toBe("Connected");
});

test("a reported patch from the device updates the twin and emits a twin-change event of IoT Hub's shape", async () => {
  emulator.createDevice("mq-rep");
  const { twin } = await connect("mq-rep");
  await new Promise<void>((resolve, reject) =>
    twin.properties.reported.update({ firmware: { version: "1.2.3" } }, (error?: Error) => (error ? reject(error) : resolve())),
  );
  const stored = emulator.getTwin("mq-rep");
  expect(stored).toMatchObject({ version: 3, properties: { reported: { firmware: { version: "1.2.3" }, $version: 2 } } });

  const event = allEvents().find((e) => e.properties.deviceId === "mq-rep" && e.properties.opType === "updateTwin");
  expect(event).toBeDefined();
  expect(event!.properties).toMatchObject({ hubName: emulator.hubName, deviceId: "mq-rep", opType: "updateTwin", "iothub-message-schema": "twinChangeNotification" });
  expect(event!.systemProperties).toMatchObject({ "iothub-message-source": "twinChangeEvents", "iothub-connection-device-id": "mq-rep" });
  expect(event!.body).toEqual({
    version: 3,
    properties: {
      reported: {
        firmware: { version: "1.2.3" },
        $metadata: {
          $lastUpdated: expect.any(String),
          firmware: { $lastUpdated: expect.any(String), version: { $lastUpdated: expect.any(String) } },
        },
        $version: 2,
      },
    },
  });
});

test("a desired patch from the back end reaches the connected device with its $version", async () => {
  emulator.createDevice("mq-des");
  const { twin } = await connect("mq-des");
  const received = new Promise<Record<string, unknown>>((resolve) => {
    twin.on("properties.desired", (patch: Record<string, unknown>) => {
      if (patch.interval === 60) resolve(patch);
    });
  });
  // The SDK subscribes to desired updates lazily, when the listener is added.
  await eventually(() => emulator.isListeningForDesired("mq-des"));
  const registry = emulator.createRegistryClient();
  const { responseBody } = await registry.getTwin("mq-des");
  await registry.updateTwin("mq-des", { properties: { desired: { interval: 60 } } }, responseBody.etag);
  await expect(received).resolves.toMatchObject({ interval: 60, $version: 2 });
});

test("a dropped desired notification never reaches the device but still changes the twin", async () => {
  emulator.createDevice("mq-lossy");
  const { twin } = await connect("mq-lossy");
  const seen: unknown[] = [];
  twin.on("properties.desired", (patch: Record<string, unknown>) => seen.push(patch.mode));
  await eventually(() => emulator.isListeningForDesired("mq-lossy"));
  emulator.setDesiredNotificationFilter((address) => address.deviceId === "mq-lossy");
  const droppedBefore = emulator.counters.device.desiredNotificationsDropped;
  emulator.updateDesired("mq-lossy", { mode: "eco" });
  emulator.setDesiredNotificationFilter(undefined);
  emulator.updateDesired("mq-lossy", { mode: "boost" });
  await eventually(() => seen.includes("boost"));
  expect(seen).not.toContain("eco");
  expect(emulator.counters.device.desiredNotificationsDropped).toBe(droppedBefore + 1);
  expect(emulator.getTwin("mq-lossy")).toMatchObject({ properties: { desired: { mode: "boost", $version: 3 } } });
});

test("a device with a wrong key cannot connect", async () => {
  emulator.createDevice("mq-bad");
  const good = emulator.deviceConnectionString("mq-bad");
  const bad = good.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 1).toString("base64")}`);
  const client = Client.fromConnectionString(bad, Mqtt);
  await client.setOptions({ ca: emulator.caPem });
  await expect(client.open()).rejects.toThrow();
  expect(emulator.getDevice("mq-bad").connectionState).toBe("Disconnected");
});

test("a module client gets its module twin and reports into it", async () => {
  emulator.createDevice("mq-host");
  emulator.createModule("mq-host", "agent");
  emulator.updateDesired({ deviceId: "mq-host", moduleId: "agent" }, { level: 3 });
  const client = ModuleClient.fromConnectionString(emulator.deviceConnectionString("mq-host", "agent"), Mqtt);
  await client.setOptions({ ca: emulator.caPem });
  try {
    const twin = await client.getTwin();
    expect(twin.properties.desired).toMatchObject({ level: 3, $version: 2 });
    await new Promise<void>((resolve, reject) => twin.properties.reported.update({ level: 3 }, (error?: Error) => (error ? reject(error) : resolve())));
    expect(emulator.getTwin({ deviceId: "mq-host", moduleId: "agent" })).toMatchObject({ properties: { reported: { level: 3 } } });
    const event = allEvents().find((e) => e.properties.moduleId === "agent");
    expect(event?.systemProperties).toMatchObject({ "iothub-connection-device-id": "mq-host", "iothub-connection-module-id": "agent" });
  } finally {
    await client.close();
  }
});

test("deleting a device drops its MQTT connection", async () => {
  emulator.createDevice("mq-gone");
  const { client, twin } = await connect("mq-gone");
  let disconnected = false;
  client.on("disconnect", () => (disconnected = true));
  emulator.deleteDevice("mq-gone");
  twin.properties.reported.update({ a: 1 }, () => undefined);
  await eventually(() => disconnected);
});

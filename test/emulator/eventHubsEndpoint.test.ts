import { EventHubConsumerClient, earliestEventPosition, type ReceivedEventData } from "@azure/event-hubs";
import { startEmulator, type Emulator } from "../../local/emulator";

let emulator: Emulator;

beforeAll(async () => {
  emulator = await startEmulator({ throttling: "off" });
  emulator.createDevice("eh-a");
  emulator.updateDesired("eh-a", { mode: "eco" });
});

afterAll(() => emulator.stop());

test("the unmodified EventHubConsumerClient reads a partition from the earliest event", async () => {
  const client = new EventHubConsumerClient("$Default", emulator.eventHubs.connectionString);
  try {
    expect(await client.getPartitionIds()).toEqual(["0", "1", "2", "3"]);
    const pid = emulator.events.partitionOf("eh-a");
    const truth = emulator.events.read(pid, 0, 100);
    const got: ReceivedEventData[] = [];
    await new Promise<void>((resolve, reject) => {
      const sub = client.subscribe(
        pid,
        {
          processEvents: async (events) => {
            got.push(...events);
            if (got.length >= truth.length) {
              await sub.close();
              resolve();
            }
          },
          processError: async (error) => reject(error),
        },
        { startPosition: earliestEventPosition, maxBatchSize: 1 },
      );
    });
    expect(got.map((e) => [e.sequenceNumber, e.offset, e.body])).toEqual(truth.map((e) => [e.sequenceNumber, e.offset, e.body]));
  } finally {
    await client.close();
  }
});

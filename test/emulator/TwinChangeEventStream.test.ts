import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import type { JsonObject } from "../../shared/twin/json";
import { createManualClock } from "../../local/emulator/Clock";
import { IotHub } from "../../local/emulator/IotHub";
import { partitionForDevice } from "../../local/emulator/partitionForDevice";
import { twinChangeEvent } from "../../local/emulator/twinChangeEvent";
import { mergeBodies, TwinChangeEventStream, type FaultInjection } from "../../local/emulator/TwinChangeEventStream";

const at = Date.UTC(2026, 0, 1, 12, 0, 0, 250);

describe("twin-change event shape", () => {
  test("a device change carries exactly IoT Hub's application and system properties", () => {
    const event = twinChangeEvent({ deviceId: "d1", moduleId: null, generationId: "g1", opType: "updateTwin", timestampMs: at, body: { version: 2 } }, "hub1", "corr-1");
    expect(event.properties).toEqual({
      hubName: "hub1",
      deviceId: "d1",
      operationTimestamp: "2026-01-01T12:00:00.2500000Z",
      "iothub-message-schema": "twinChangeNotification",
      opType: "updateTwin",
    });
    expect(event.systemProperties).toEqual({
      "iothub-connection-device-id": "d1",
      "iothub-enqueuedtime": "2026-01-01T12:00:00.250Z",
      "iothub-message-source": "twinChangeEvents",
      "content-type": "application/json",
      "content-encoding": "utf-8",
      "correlation-id": "corr-1",
      "user-id": "hub1",
    });
    expect(event.body).toEqual({ version: 2 });
  });

  test("a module change adds moduleId and iothub-connection-module-id", () => {
    const event = twinChangeEvent({ deviceId: "d1", moduleId: "m1", generationId: "g1", opType: "replaceTwin", timestampMs: at, body: {} }, "hub1");
    expect(event.properties).toMatchObject({ moduleId: "m1", opType: "replaceTwin" });
    expect(event.systemProperties).toMatchObject({ "iothub-connection-module-id": "m1", "correlation-id": expect.any(String) });
  });

  test("the hub routes desired, tags, reported and replace changes into the stream as ReceivedEvents", () => {
    const hub = new IotHub({ clock: createManualClock(at), hubName: "hub1", routeLifecycleEvents: false });
    hub.registry.createDevice("d1");
    hub.registry.updateTwin("d1", { tags: { t: 1 } });
    hub.registry.updateTwin("d1", { properties: { desired: { a: 1 } } });
    hub.registry.updateReported("d1", { a: 1 });
    hub.registry.replaceTwin("d1", { properties: { desired: { b: 2 } } });
    const p = hub.events.partitionOf("d1");
    const events = hub.events.read(p, 0, 100);
    expect(events.map((e) => [e.sequenceNumber, e.properties.opType, (e.body as { version: number }).version])).toEqual([
      [0, "updateTwin", 3],
      [1, "updateTwin", 4],
      [2, "updateTwin", 5],
      [3, "replaceTwin", 6],
    ]);
    const first = events[0]!;
    expect(first).toMatchObject({ partitionId: p, offset: "0", enqueuedTimeUtc: "2026-01-01T12:00:00.250Z" });
    expect(first.systemProperties).toMatchObject({ "x-opt-sequence-number": 0, "x-opt-offset": "0", "x-opt-enqueued-time": "2026-01-01T12:00:00.250Z" });
    expect(Number(events[1]!.offset)).toBeGreaterThan(0);
    expect(hub.events.counters).toMatchObject({ emitted: 4, appended: 4 });
  });
});

describe("partitions", () => {
  test("a device always maps to the same partition and devices spread over all of them", () => {
    expect(partitionForDevice("device-42", 4)).toBe(partitionForDevice("device-42", 4));
    const used = new Set(Array.from({ length: 64 }, (_, i) => partitionForDevice(`device-${i}`, 4)));
    expect(used).toEqual(new Set([0, 1, 2, 3]));
  });

  test("read returns events from a sequence number, at most maxCount", () => {
    const stream = new TwinChangeEventStream({ partitionCount: 1 });
    for (let v = 1; v <= 5; v++) stream.append(change("d", v));
    expect(stream.read("0", 2, 2).map((e) => e.sequenceNumber)).toEqual([2, 3]);
    expect(stream.read("0", 9, 2)).toEqual([]);
    expect(() => stream.read("7", 0, 1)).toThrow(/Unknown partition '7'/);
  });

  test("waitFor resolves when the partition reaches the sequence number, or on abort", async () => {
    const stream = new TwinChangeEventStream({ partitionCount: 1 });
    let resolved = false;
    const waiting = stream.waitFor("0", 1).then(() => (resolved = true));
    stream.append(change("d", 1));
    await Promise.resolve();
    expect(resolved).toBe(false);
    stream.append(change("d", 2));
    await waiting;
    expect(resolved).toBe(true);
    const controller = new AbortController();
    const aborted = stream.waitFor("0", 10, controller.signal);
    controller.abort();
    await expect(aborted).resolves.toBeUndefined();
  });
});

describe("fault injection", () => {
  function run(faults: FaultInjection, devices = ["d1", "d2", "d3"], changesPerDevice = 30): ReceivedEvent[] {
    const stream = new TwinChangeEventStream({ partitionCount: 2, faults });
    for (let v = 1; v <= changesPerDevice; v++) for (const d of devices) stream.append(change(d, v));
    return stream.partitionIds.flatMap((p) => stream.read(p, 0, 10_000));
  }
  const versions = (events: ReceivedEvent[], deviceId: string): number[] =>
    events.filter((e) => e.properties.deviceId === deviceId).map((e) => (e.body as { version: number }).version);

  test("the same seed gives the same stream, another seed another one", () => {
    const faults = { seed: 7, duplicateProbability: 0.2, resendProbability: 0.1, coalesceProbability: 0.3 };
    const a = run(faults);
    expect(run(faults)).toEqual(a);
    expect(versions(run({ ...faults, seed: 8 }), "d1")).not.toEqual(versions(a, "d1"));
  });

  test("duplicates repeat single events in place", () => {
    const stream = new TwinChangeEventStream({ partitionCount: 1, faults: { seed: 3, duplicateProbability: 1 } });
    stream.append(change("d", 1));
    stream.append(change("d", 2));
    expect(stream.read("0", 0, 10).map((e) => (e.body as { version: number }).version)).toEqual([1, 1, 2, 2]);
    expect(stream.counters).toMatchObject({ emitted: 2, appended: 4, duplicated: 2 });
  });

  test("a re-sent series repeats recent events in order (1,2,1,2,3)", () => {
    const stream = new TwinChangeEventStream({ partitionCount: 1, faults: { seed: 1, resendMaxLength: 2 } });
    stream.append(change("d", 1));
    stream.setFaults({ seed: 1, resendProbability: 1, resendMaxLength: 2 });
    stream.append(change("d", 2));
    stream.setFaults({});
    stream.append(change("d", 3));
    expect(stream.read("0", 0, 10).map((e) => (e.body as { version: number }).version)).toEqual([1, 2, 1, 2, 3]);
    expect(stream.counters).toMatchObject({ resent: 2, resendSeries: 1 });
  });

  test("faults never reorder a device's changes: an older version only reappears as a repeat", () => {
    const events = run({ seed: 11, duplicateProbability: 0.3, resendProbability: 0.2, coalesceProbability: 0.3 });
    for (const d of ["d1", "d2", "d3"]) {
      const seen = new Set<number>();
      let highest = 0;
      for (const v of versions(events, d)) {
        if (v <= highest) expect(seen.has(v)).toBe(true);
        seen.add(v);
        highest = Math.max(highest, v);
      }
      expect(highest).toBe(30);
    }
  });

  test("coalescing merges consecutive unread changes of one device: later values win, versions are the last", () => {
    const stream = new TwinChangeEventStream({ partitionCount: 1, faults: { coalesceProbability: 1 } });
    stream.append(change("d", 2, { a: 1, o: { x: 1 } }));
    stream.append(change("d", 3, { b: 2, o: { y: 2 }, a: null }));
    const [event, ...rest] = stream.read("0", 0, 10);
    expect(rest).toEqual([]);
    expect(event!.body).toEqual({ version: 3, properties: { desired: { a: null, b: 2, o: { x: 1, y: 2 }, $version: 3 } } });
    expect(stream.counters).toMatchObject({ emitted: 2, appended: 1, coalesced: 1 });
  });

  test("an event already read is never changed by coalescing", () => {
    const stream = new TwinChangeEventStream({ partitionCount: 1, faults: { coalesceProbability: 1 } });
    stream.append(change("d", 2, { a: 1 }));
    stream.read("0", 0, 10);
    stream.append(change("d", 3, { a: 2 }));
    expect(stream.read("0", 0, 10)).toHaveLength(2);
  });

  test("mergeBodies replaces arrays and scalars and merges objects", () => {
    expect(mergeBodies({ l: [1, 2], o: { a: 1 }, s: { n: 1 } }, { l: [3], o: { b: 2 }, s: 1 })).toEqual({ l: [3], o: { a: 1, b: 2 }, s: 1 });
  });

  test.each([
    ["a value", 1],
    ["null (deleted)", null],
    ["an array", [1]],
  ])("mergeBodies refuses an object that follows %s: one merge patch would bring back the old object's keys", (_what, first) => {
    expect(mergeBodies({ version: 3, properties: { desired: { o: first, $version: 2 } } }, { version: 4, properties: { desired: { o: { t: 1 }, $version: 3 } } })).toBeUndefined();
  });
});

function change(deviceId: string, version: number, desired: JsonObject = { v: version }) {
  return twinChangeEvent(
    { deviceId, moduleId: null, generationId: "g1", opType: "updateTwin", timestampMs: at + version, body: { version, properties: { desired: { ...desired, $version: version } } } },
    "hub1",
    `${deviceId}-${version}`,
  );
}

import type { ReceivedEvent } from "../../shared/events/ReceivedEvent";
import { createManualClock } from "../../local/emulator/Clock";
import { IotHub } from "../../local/emulator/IotHub";
import { TwinChangeEventStream, type FaultInjection } from "../../local/emulator/TwinChangeEventStream";
import { twinChangeEvent } from "../../local/emulator/twinChangeEvent";

const at = Date.UTC(2026, 0, 1, 12, 0, 0);

function change(deviceId: string, version: number, timestampMs = at + version) {
  return twinChangeEvent(
    { deviceId, moduleId: null, generationId: "g1", opType: "updateTwin", timestampMs, body: { version, properties: { desired: { v: version, $version: version } } } },
    "hub1",
    `${deviceId}-${version}`,
  );
}

function run(faults: FaultInjection, devices = ["d1", "d2", "d3"], changesPerDevice = 300): { stream: TwinChangeEventStream; events: ReceivedEvent[] } {
  const stream = new TwinChangeEventStream({ partitionCount: 2, faults });
  for (let v = 1; v <= changesPerDevice; v++) for (const d of devices) stream.append(change(d, v));
  return { stream, events: stream.partitionIds.flatMap((p) => stream.read(p, 0, 100_000)) };
}

const delivered = (events: ReceivedEvent[]): string[] => events.map((e) => `${String(e.properties.deviceId)}@${(e.body as { version: number }).version}`);

describe("dropRate", () => {
  test("drops a seeded fraction of twin-change events: the same seed drops the same ones, and the counters add up", () => {
    const a = run({ seed: 5, dropRate: 0.3 });
    const b = run({ seed: 5, dropRate: 0.3 });
    expect(delivered(b.events)).toEqual(delivered(a.events));
    const counters = a.stream.counters;
    expect(counters.emitted).toBe(900);
    expect(counters.dropped + counters.appended).toBe(900);
    expect(a.events).toHaveLength(counters.appended);
    // 900 draws at 0.3: the count stays well inside ±6 standard deviations (σ ≈ 13.7).
    expect(counters.dropped).toBeGreaterThan(270 - 82);
    expect(counters.dropped).toBeLessThan(270 + 82);
    expect(delivered(run({ seed: 6, dropRate: 0.3 }).events)).not.toEqual(delivered(a.events));
  });

  test("dropped events leave the order of the rest intact and never come back", () => {
    const { events } = run({ seed: 9, dropRate: 0.5 });
    for (const d of ["d1", "d2", "d3"]) {
      const versions = events.filter((e) => e.properties.deviceId === d).map((e) => (e.body as { version: number }).version);
      expect(versions).toEqual([...versions].sort((x, y) => x - y));
      expect(new Set(versions).size).toBe(versions.length);
    }
  });

  test("setting dropRate leaves the other faults of a seed where they were", () => {
    const duplicatedVersions = (events: ReceivedEvent[]): string[] => {
      const keys = delivered(events);
      return keys.filter((k, i) => keys.indexOf(k) !== i);
    };
    const without = run({ seed: 3, duplicateProbability: 0.2 });
    const withDrops = run({ seed: 3, duplicateProbability: 0.2, dropRate: 0.4 });
    const kept = new Set(delivered(withDrops.events));
    expect(duplicatedVersions(withDrops.events)).toEqual(duplicatedVersions(without.events).filter((k) => kept.has(k)));
    expect(withDrops.stream.counters.dropped).toBeGreaterThan(0);
  });

  test("lifecycle events are never dropped", () => {
    const h = new IotHub({ clock: createManualClock(at), partitionCount: 1, faults: { seed: 1, dropRate: 0.99 } });
    for (let i = 0; i < 50; i++) h.registry.createDevice(`d${i}`);
    for (let i = 0; i < 50; i++) h.registry.updateTwin(`d${i}`, { properties: { desired: { a: 1 } } });
    const events = h.events.read("0", 0, 1000);
    expect(events.filter((e) => e.properties.opType === "createDeviceIdentity")).toHaveLength(50);
    expect(h.events.counters).toMatchObject({ emitted: 100, lifecycle: 50, dropped: 100 - events.length });
    expect(h.events.counters.dropped).toBeGreaterThan(40);
  });

  test.each([1, -0.1, 1.5, Number.NaN])("refuses dropRate %p with a RangeError naming it", (dropRate) => {
    expect(() => new TwinChangeEventStream({ faults: { dropRate } })).toThrow(/faults\.dropRate must be a number from 0 to below 1/);
  });
});

describe("lostWindow", () => {
  test("loses every twin change and lifecycle event enqueued in [from, to), and nothing outside", () => {
    const clock = createManualClock(at);
    const h = new IotHub({ clock, partitionCount: 1, faults: { lostWindow: { from: at + 10_000, to: at + 20_000 } } });
    h.registry.createDevice("before");
    h.registry.updateTwin("before", { properties: { desired: { a: 1 } } });
    clock.set(at + 10_000);
    h.registry.createDevice("inside");
    h.registry.updateTwin("before", { properties: { desired: { a: 2 } } });
    clock.set(at + 19_999);
    h.registry.updateReported("inside", { r: 1 });
    h.registry.deleteDevice("inside");
    clock.set(at + 20_000);
    h.registry.updateTwin("before", { properties: { desired: { a: 3 } } });
    const seen = h.events.read("0", 0, 100).map((e) => [e.properties.deviceId, e.properties.opType, (e.body as { version: number }).version]);
    expect(seen).toEqual([
      ["before", "createDeviceIdentity", 2],
      ["before", "updateTwin", 3],
      ["before", "updateTwin", 5],
    ]);
    expect(h.events.counters).toMatchObject({ emitted: 7, lost: 4, appended: 3 });
  });

  test("takes ISO instants, and the same settings give the same stream", () => {
    const runWindow = (): string[] => {
      const stream = new TwinChangeEventStream({
        partitionCount: 1,
        faults: { seed: 4, dropRate: 0.2, duplicateProbability: 0.1, lostWindow: { from: new Date(at + 50).toISOString(), to: new Date(at + 100).toISOString() } },
      });
      for (let v = 1; v <= 200; v++) stream.append(change("d", v));
      expect(stream.counters.lost).toBe(50);
      return delivered(stream.read("0", 0, 1000));
    };
    const a = runWindow();
    expect(runWindow()).toEqual(a);
    expect(a.filter((k) => { const v = Number(k.split("@")[1]); return v >= 50 && v < 100; })).toEqual([]);
  });

  test("refuses a window that ends before it starts or has an invalid instant", () => {
    expect(() => new TwinChangeEventStream({ faults: { lostWindow: { from: at, to: at - 1 } } })).toThrow(/faults\.lostWindow/);
    expect(() => new TwinChangeEventStream({ faults: { lostWindow: { from: "not a time", to: at } } })).toThrow(/faults\.lostWindow/);
  });
});
